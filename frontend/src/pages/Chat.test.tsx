import { afterEach, describe, expect, it, vi } from "vitest";
import { act, render, screen, within, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { AnswerText, ChatPage } from "./Chat";
import { setCsrfToken, type Citation, type Message } from "../api";
import { json, mockApi, renderWithClient, jsonBody, sseResponse } from "../test/utils";

const citation: Citation = {
  n: 1,
  document_id: "d1",
  document_name: "handbook.txt",
  chunk_id: 7,
  start: 10,
  end: 60,
  score: 0.8,
  text: "The gates open at dawn.",
};

const conversation = { id: "c1", title: "Harbour", created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z" };

afterEach(() => {
  vi.unstubAllGlobals();
  setCsrfToken(null);
  localStorage.clear();
});

/** A response body the test writes into piece by piece. */
function controlledStream() {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return {
    response: new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } }),
    /** Sends one event and lets React render what it causes. */
    async send(name: string, data: unknown) {
      await act(async () => {
        controller.enqueue(encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`));
        await new Promise((r) => setTimeout(r, 0));
      });
    },

  };
}

describe("ChatPage", () => {
  it("streams the answer in, then shows the stored message with citation chips that open the passage", async () => {
    setCsrfToken("tok");
    const stream = controlledStream();
    const stored: Message[] = [];
    const { calls } = mockApi({
      "GET /conversations": () => json(200, [conversation]),
      "GET /conversations/c1": () => json(200, { ...conversation, collection_ids: [], messages: stored }),
      "POST /conversations/c1/messages": () => stream.response,
      "GET /chunks/7": () =>
        json(200, {
          id: 7,
          document_id: "d1",
          document_name: "handbook.txt",
          ordinal: 2,
          text: "The gates open at dawn.",
          start: 10,
          end: 33,
          before: "Opening hours. ",
          after: " Boats report on arrival.",
        }),
    });
    const user = userEvent.setup();
    const { client } = renderWithClient(<ChatPage conversationId="c1" />);
    await screen.findByRole("heading", { name: "Harbour" });

    await user.type(screen.getByLabelText("Your question"), "When do the gates open?{Enter}");
    expect(await screen.findByText("When do the gates open?", { selector: "div" })).toBeInTheDocument();

    await stream.send("sources", { citations: [citation] });
    await stream.send("token", { text: "They open " });
    const answer = await screen.findByRole("article", { name: "Answer" });
    await waitFor(() => expect(answer).toHaveTextContent("They open"));
    expect(screen.getByRole("button", { name: "Stop" })).toBeInTheDocument();

    // The server has stored the question by now; a refetch meanwhile shows it once, not twice.
    const question: Message = { id: 1, role: "user", content: "When do the gates open?", mode: null, citations: [], created_at: "2026-01-01T00:00:00Z" };
    stored.push(question);
    await act(() => client.invalidateQueries({ queryKey: ["conversation", "c1"] }));
    expect(screen.getAllByText("When do the gates open?", { selector: "div" })).toHaveLength(1);

    await stream.send("token", { text: "at dawn [1]." });
    await waitFor(() => expect(answer).toHaveTextContent("They open at dawn"));
    const done: Message = {
      id: 2,
      role: "assistant",
      content: "They open at dawn [1].",
      mode: "llm",
      citations: [citation],
      created_at: "2026-01-01T00:00:01Z",
    };
    stored.push(done);
    // The client stops reading (and cancels the body) at `done`.
    await stream.send("done", { message: done });

    // The stored conversation replaces the streamed answer; Send is back.
    await screen.findByRole("button", { name: "Send" });
    expect(screen.getAllByText("When do the gates open?", { selector: "div" })).toHaveLength(1);
    expect(screen.getAllByRole("article", { name: "Answer" })).toHaveLength(1);
    const post = calls.find((c) => c.method === "POST");
    expect((post?.init.headers as Record<string, string>)["X-CSRF-Token"]).toBe("tok");
    expect(jsonBody(post?.init)).toEqual({ content: "When do the gates open?" });

    const chip = screen.getAllByRole("button", { name: "Source 1: handbook.txt" })[0];
    expect(chip).toBeDefined();
    await user.click(chip as HTMLElement);
    const dialog = await screen.findByRole("dialog", { name: "Source 1: handbook.txt" });
    const passage = await within(dialog).findByTestId("passage");
    expect(passage).toHaveTextContent("Opening hours. The gates open at dawn. Boats report on arrival.");
    expect(passage.querySelector("mark")).toHaveTextContent("The gates open at dawn.");
    expect(within(dialog).getByRole("link", { name: "Download the original document" })).toHaveAttribute(
      "href",
      "/api/v1/documents/d1/file",
    );
  });

  it("shows a failed answer in the API's words", async () => {
    mockApi({
      "GET /conversations": () => json(200, [conversation]),
      "GET /conversations/c1": () => json(200, { ...conversation, collection_ids: [], messages: [] }),
      "POST /conversations/c1/messages": () =>
        json(503, { error: { code: "unavailable", message: "the LLM server is unavailable; try again when it is back" } }),
    });
    const user = userEvent.setup();
    renderWithClient(<ChatPage conversationId="c1" />);
    await screen.findByRole("heading", { name: "Harbour" });
    await user.type(screen.getByLabelText("Your question"), "Anything?");
    await user.click(screen.getByRole("button", { name: "Send" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The LLM server is unavailable; try again when it is back");
  });

  it("creates a conversation for the first question asked on /chat", async () => {
    window.history.replaceState(null, "", "/chat");
    const { calls } = mockApi({
      "GET /conversations": () => json(200, []),
      "POST /conversations": () => json(201, { ...conversation, id: "new1", title: "New conversation" }),
      "GET /conversations/new1": () => json(200, { ...conversation, id: "new1", collection_ids: [], messages: [] }),
      "POST /conversations/new1/messages": () =>
        new Response('event: error\ndata: {"code":"llm_failed","message":"model crashed"}\n\n', {
          headers: { "Content-Type": "text/event-stream" },
        }),
    });
    const user = userEvent.setup();
    renderWithClient(<ChatPage />);
    await screen.findByText("No conversations yet.");
    await user.type(screen.getByLabelText("Your question"), "Hello?{Enter}");
    await waitFor(() => expect(window.location.pathname).toBe("/chat/new1"));
    expect(calls.map((c) => `${c.method} ${c.path}`)).toContain("POST /conversations/new1/messages");
  });
});

describe("ChatPage when things go wrong", () => {
  const empty = () => json(200, { ...conversation, collection_ids: [], messages: [] });

  it("keeps a question the server could not be reached for in the box, with Retry", async () => {
    let reachable = false;
    const answer: Message = { id: 2, role: "assistant", content: "At dawn.", mode: "llm", citations: [], created_at: "2026-01-01T00:00:01Z" };
    mockApi({
      "GET /conversations": () => json(200, [conversation]),
      "GET /conversations/c1": empty,
      "GET /collections": () => json(200, []),
      "POST /conversations/c1/messages": () => {
        if (!reachable) throw new TypeError("Failed to fetch");
        return sseResponse([["sources", { citations: [] }], ["token", { text: "At dawn." }], ["done", { message: answer }]]);
      },
    });
    const user = userEvent.setup();
    renderWithClient(<ChatPage conversationId="c1" />);
    await screen.findByRole("heading", { name: "Harbour" });
    await user.type(screen.getByLabelText("Your question"), "When do the gates open?{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("Cannot reach the Berth server; check your connection");
    expect(screen.getByLabelText("Your question")).toHaveValue("When do the gates open?");
    expect(localStorage.getItem("berth.draft.c1")).toBe("When do the gates open?");

    reachable = true;
    await user.click(screen.getByRole("button", { name: "Retry" }));
    await waitFor(() => expect(screen.queryByRole("button", { name: "Retry" })).toBeNull());
    expect(screen.getByLabelText("Your question")).toHaveValue("");
    expect(localStorage.getItem("berth.draft.c1")).toBeNull();
  });

  it("brings back the draft of a conversation when it is opened again", () => {
    localStorage.setItem("berth.draft.c1", "Kept across sign-in");
    mockApi({
      "GET /conversations": () => json(200, [conversation]),
      "GET /conversations/c1": empty,
      "GET /collections": () => json(200, []),
    });
    renderWithClient(<ChatPage conversationId="c1" />);
    expect(screen.getByLabelText("Your question")).toHaveValue("Kept across sign-in");
  });

  it("says plainly that a conversation no longer exists, and offers a way back", async () => {
    mockApi({
      "GET /conversations": () => json(200, [conversation]),
      "GET /conversations/gone": () => json(404, { error: { code: "not_found", message: "no conversation gone of yours" } }),
      "GET /collections": () => json(200, []),
    });
    renderWithClient(<ChatPage conversationId="gone" />);
    expect(await screen.findByText(/This conversation no longer exists/)).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Start a new conversation" })).toHaveAttribute("href", "/chat");
    expect(screen.queryByText(/of yours/)).toBeNull();
    expect(screen.queryByRole("button", { name: "Delete" })).toBeNull();
  });

  it("creates no conversation for New conversation, only for a first question", async () => {
    window.history.replaceState(null, "", "/chat/c1");
    const { calls } = mockApi({
      "GET /conversations": () => json(200, [conversation]),
      "GET /conversations/c1": empty,
      "GET /collections": () => json(200, [{ id: "k1", name: "Handbook", shared: false, owner: { id: "u", username: "u" }, role: "owner", document_count: 0 }]),
    });
    const user = userEvent.setup();
    renderWithClient(<ChatPage conversationId="c1" />);
    await screen.findByRole("heading", { name: "Harbour" });
    await user.click(screen.getByRole("button", { name: "New conversation" }));
    expect(window.location.pathname).toBe("/chat");
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(0);
  });

  it("shows the extractive label without repeating the answer's own explanation", async () => {
    const extractive: Message = {
      id: 2,
      role: "assistant",
      content: "No LLM is configured, so this is an extractive answer.\n\nThe gates open at dawn.",
      mode: "extractive",
      citations: [],
      created_at: "2026-01-01T00:00:01Z",
    };
    mockApi({
      "GET /conversations": () => json(200, [conversation]),
      "GET /conversations/c1": () => json(200, { ...conversation, collection_ids: [], messages: [extractive] }),
      "GET /collections": () => json(200, []),
    });
    renderWithClient(<ChatPage conversationId="c1" />);
    const answer = await screen.findByRole("article", { name: "Answer" });
    expect(within(answer).getByText("Extractive")).toBeInTheDocument();
    expect(answer.textContent.match(/is configured/g)).toHaveLength(1);
  });
});

describe("AnswerText", () => {
  it("turns [n] markers with a matching citation into chips, and leaves others as text", () => {
    render(<AnswerText content="Dawn [1], dusk [2]." citations={[citation]} onCite={() => undefined} />);
    expect(screen.getByRole("button", { name: "Source 1: handbook.txt" })).toHaveTextContent("1");
    expect(document.body).toHaveTextContent("Dawn 1, dusk [2].");
  });
});
