import { afterEach, describe, expect, it, vi } from "vitest";
import { fireEvent, screen, waitFor } from "@testing-library/react";
import { QueryClientProvider } from "@tanstack/react-query";
import userEvent from "@testing-library/user-event";
import type { Collection, DocumentInfo } from "../api";
import { PendingBadge } from "../components/PendingBadge";
import { json, jsonBody, mockApi, renderWithClient } from "../test/utils";
import { RuntimeSettings } from "./AdminSettings";
import { DocumentViewer } from "./DocumentViewer";
import { SharingPanel } from "./Sharing";
import { phaseOf } from "./UploadZone";

afterEach(() => {
  vi.unstubAllGlobals();
});

const privateCollection: Collection = {
  id: "col1",
  name: "Handbook",
  shared: false,
  owner: { id: "u1", username: "alice" },
  role: "owner",
  document_count: 0,
};

const session = { user: { id: "u1", username: "alice", role: "user", state: "active", created_at: "" }, csrf_token: "t" };

describe("SharingPanel", () => {
  it("shares a private collection, then adds a member by name and confirms", async () => {
    let shared = false;
    let members: { id: string; username: string }[] = [];
    const { calls } = mockApi({
      "GET /auth/session": () => json(200, session),
      "PATCH /collections/col1": () => {
        shared = true;
        return json(200, { ...privateCollection, shared });
      },
      "GET /collections/col1/members": () => json(200, members),
      "POST /collections/col1/members": () => {
        members = [{ id: "u2", username: "eve" }];
        return json(204, null);
      },
      "GET /collections": () => json(200, [{ ...privateCollection, shared }]),
    });
    const user = userEvent.setup();
    const { rerender, client } = renderWithClient(<SharingPanel collection={privateCollection} />);
    await user.click(await screen.findByRole("button", { name: "Share with members" }));
    await waitFor(() => expect(calls.some((c) => c.method === "PATCH")).toBe(true));
    expect(jsonBody(calls.find((c) => c.method === "PATCH")?.init)).toEqual({ shared: true });
    // The page passes the collection as listed again, now shared.
    rerender(
      <QueryClientProvider client={client}>
        <SharingPanel collection={{ ...privateCollection, shared: true }} />
      </QueryClientProvider>,
    );
    await user.type(await screen.findByLabelText("User name"), "eve");
    await user.click(screen.getByRole("button", { name: "Add member" }));
    expect(await screen.findByText("eve is now a member and can use this collection.")).toBeInTheDocument();
    expect(await screen.findByRole("button", { name: "Remove eve" })).toBeInTheDocument();
  });

  it("shows why a name cannot be added, in the API's words", async () => {
    mockApi({
      "GET /auth/session": () => json(200, session),
      "GET /collections/col1/members": () => json(200, []),
      "POST /collections/col1/members": () =>
        json(422, { error: { code: "invalid", message: "no active user named nobody; check the user name" } }),
    });
    const user = userEvent.setup();
    renderWithClient(<SharingPanel collection={{ ...privateCollection, shared: true }} />);
    await user.type(await screen.findByLabelText("User name"), "nobody");
    await user.click(screen.getByRole("button", { name: "Add member" }));
    expect(await screen.findByText("No active user named nobody; check the user name")).toBeInTheDocument();
  });
});

describe("upload phases", () => {
  const doc = (over: Partial<DocumentInfo>): DocumentInfo => ({
    id: "d1",
    collection_id: "col1",
    filename: "a.pdf",
    media_type: "application/pdf",
    size: 1,
    status: "queued",
    progress: 0,
    error: null,
    chunk_count: 0,
    created_at: "",
    ...over,
  });
  it("go uploading, processing, ready or failed with the reason", () => {
    const upload = { key: "k", name: "a.pdf", progress: 0.42 };
    expect(phaseOf(upload, [])).toEqual({ kind: "uploading", percent: 42 });
    // Sent in full, not answered yet: the server is checking it.
    expect(phaseOf({ ...upload, progress: 1 }, []).kind).toBe("processing");
    const sent = { ...upload, progress: 1, documentId: "d1" };
    expect(phaseOf(sent, [doc({})]).kind).toBe("processing");
    expect(phaseOf(sent, [doc({ status: "processing", progress: 0.3 })])).toEqual({ kind: "processing", progress: 0.3 });
    expect(phaseOf(sent, [doc({ status: "ready" })])).toEqual({ kind: "ready" });
    expect(phaseOf(sent, [doc({ status: "failed", error: "the PDF has no text layer" })])).toEqual({
      kind: "failed",
      reason: "the PDF has no text layer",
    });
    expect(phaseOf({ ...upload, error: "too large" }, [])).toEqual({ kind: "failed", reason: "too large" });
  });
});

describe("DocumentViewer", () => {
  it("marks the cited passage in the document's text", async () => {
    mockApi({
      "GET /documents/d1/text": () =>
        json(200, {
          id: "d1",
          collection_id: "col1",
          filename: "handbook.txt",
          media_type: "text/plain",
          text: "Arrival. Call the office. Fees are paid weekly.",
          passages: [
            { id: 7, start: 0, end: 25 },
            { id: 8, start: 26, end: 47 },
          ],
        }),
      "GET /collections": () => json(200, [privateCollection]),
    });
    renderWithClient(<DocumentViewer documentId="d1" passage={8} />);
    const mark = await screen.findByTestId("cited-passage");
    expect(mark).toHaveTextContent("Fees are paid weekly.");
    expect(await screen.findByRole("link", { name: "Back to Handbook" })).toBeInTheDocument();
  });

  it("says when the passage is gone", async () => {
    mockApi({
      "GET /documents/d1/text": () =>
        json(200, { id: "d1", collection_id: "col1", filename: "h.txt", media_type: "text/plain", text: "Text.", passages: [] }),
      "GET /collections": () => json(200, []),
    });
    renderWithClient(<DocumentViewer documentId="d1" passage={99} />);
    expect(await screen.findByText(/no longer in this document/)).toBeInTheDocument();
    expect(screen.queryByTestId("cited-passage")).toBeNull();
  });
});

describe("RuntimeSettings", () => {
  const settings = (k: string, source: "admin" | "server") => [
    { key: "llm_model", value: "llama3.2", default: "llama3.2", source: "server" },
    { key: "retrieval_k", value: k, default: "6", source, updated_by: source === "admin" ? "root" : null, updated_at: source === "admin" ? "2026-01-01T10:00:00Z" : null },
    { key: "retrieval_lexical_weight", value: "1", default: "1", source: "server" },
    { key: "retrieval_vector_weight", value: "1", default: "1", source: "server" },
    { key: "registration_open", value: "true", default: "true", source: "server" },
  ];
  it("saves only what changed and says where each value comes from", async () => {
    const { calls } = mockApi({
      "GET /admin/settings": () => json(200, settings("6", "server")),
      "PUT /admin/settings": () => json(200, settings("8", "admin")),
      "GET /status": () => json(200, { llm: { provider: null, model: null }, embeddings: { provider: null, model: null }, retrieval: "lexical", version: "x" }),
    });
    const user = userEvent.setup();
    renderWithClient(<RuntimeSettings />);
    const k = await screen.findByLabelText("Passages per question");
    fireEvent.change(k, { target: { value: "8" } });
    await user.click(screen.getByRole("button", { name: "Save settings" }));
    expect(await screen.findByText("Saved. The new values are in effect.")).toBeInTheDocument();
    expect(jsonBody(calls.find((c) => c.method === "PUT")?.init)).toEqual({ retrieval_k: "8" });
    expect(screen.getByText(/Changed here by root/)).toBeInTheDocument();
  });
});

describe("PendingBadge", () => {
  it("counts accounts waiting for approval, and hides at zero", async () => {
    const pending = [{ id: "u2", username: "bob", role: "user", state: "pending", created_at: "" }];
    mockApi({ "GET /admin/users": () => json(200, pending) });
    renderWithClient(<PendingBadge />);
    expect(await screen.findByTestId("pending-badge")).toHaveTextContent("1");
  });
});
