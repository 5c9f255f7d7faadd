import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, within, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { DocumentsPage, RetrievalNotice, needsPolling } from "./Documents";
import type { DocumentInfo } from "../api";
import { json, mockApi, renderWithClient, jsonBody } from "../test/utils";

afterEach(() => {
  vi.unstubAllGlobals();
});

const status = (retrieval: "hybrid" | "lexical") => ({
  llm: { provider: "ollama", model: "llama3.2" },
  embeddings: { provider: retrieval === "hybrid" ? "ollama" : null, model: retrieval === "hybrid" ? "nomic" : null },
  retrieval,
  version: "0.1.0",
});

const collection = {
  id: "col1",
  name: "Handbook",
  shared: false,
  owner: { id: "u1", username: "alice" },
  role: "owner",
  document_count: 2,
};

function doc(over: Partial<DocumentInfo>): DocumentInfo {
  return {
    id: "d1",
    collection_id: "col1",
    filename: "handbook.txt",
    media_type: "text/plain",
    size: 2048,
    status: "ready",
    progress: 1,
    error: null,
    chunk_count: 4,
    created_at: "2026-01-01T00:00:00Z",
    ...over,
  };
}

describe("RetrievalNotice", () => {
  it('says "lexical only" when no embedding model is configured', async () => {
    mockApi({ "GET /status": () => json(200, status("lexical")) });
    renderWithClient(<RetrievalNotice />);
    expect(await screen.findByText("Lexical only")).toBeInTheDocument();
  });

  it("says nothing with hybrid retrieval", async () => {
    const { calls } = mockApi({ "GET /status": () => json(200, status("hybrid")) });
    renderWithClient(<RetrievalNotice />);
    await waitFor(() => expect(calls).toHaveLength(1));
    expect(screen.queryByText("Lexical only")).toBeNull();
  });
});

describe("DocumentsPage", () => {
  it("polls while a document is processing, and offers retry for a failed one", async () => {
    let listed = 0;
    const { calls } = mockApi({
      "GET /status": () => json(200, status("hybrid")),
      "GET /collections": () => json(200, [collection]),
      "GET /collections/col1/documents": () => {
        listed += 1;
        return json(200, [
          listed === 1 ? doc({ status: "processing", progress: 0.5, chunk_count: 0 }) : doc({}),
          doc({ id: "d2", filename: "scan.pdf", status: "failed", error: "the PDF has no text layer" }),
        ]);
      },
      "POST /documents/d2/retry": () => json(202, doc({ id: "d2", filename: "scan.pdf", status: "queued" })),
    });
    const user = userEvent.setup();
    renderWithClient(<DocumentsPage collectionId="col1" />);

    expect(await screen.findByRole("heading", { name: "Handbook" })).toBeInTheDocument();
    const processing = await screen.findByRole("progressbar", { name: "Processing handbook.txt" });
    expect(processing).toHaveAttribute("aria-valuenow", "50");
    // The next poll (1 s later) sees it ready.
    const rows = () => screen.getAllByTestId("document-row");
    await waitFor(() => expect(rows()[0]).toHaveAttribute("data-status", "ready"), { timeout: 3000 });
    expect(screen.queryByRole("progressbar")).toBeNull();
    expect(within(rows()[1] as HTMLElement).getByText("the PDF has no text layer")).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Retry scan.pdf" }));
    await waitFor(() => expect(calls.some((c) => c.method === "POST" && c.path === "/documents/d2/retry")).toBe(true));
    expect(screen.queryByText("Lexical only")).toBeNull();
  });

  it("creates a collection and opens it", async () => {
    let created = false;
    const { calls } = mockApi({
      "GET /status": () => json(200, status("hybrid")),
      "GET /collections": () => json(200, created ? [collection] : []),
      "POST /collections": () => {
        created = true;
        return json(201, collection);
      },
      "GET /collections/col1/documents": () => json(200, []),
    });
    const user = userEvent.setup();
    renderWithClient(<DocumentsPage />);
    await screen.findByText("No collections yet: create the first one below.");
    // The empty page says what a collection is for and what to do first.
    expect(screen.getByText("Start with a collection")).toBeInTheDocument();
    await user.type(screen.getByLabelText("Name"), "Handbook");
    await user.click(screen.getByRole("button", { name: "Create collection" }));
    await waitFor(() => expect(window.location.pathname).toBe("/collections/col1"));
    const post = calls.find((c) => c.method === "POST");
    expect(jsonBody(post?.init)).toEqual({ name: "Handbook", shared: false });
  });

  it("knows when to poll", () => {
    expect(needsPolling(undefined)).toBe(false);
    expect(needsPolling([doc({}), doc({ status: "failed" })])).toBe(false);
    expect(needsPolling([doc({}), doc({ status: "queued" })])).toBe(true);
    expect(needsPolling([doc({ status: "processing" })])).toBe(true);
  });
});
