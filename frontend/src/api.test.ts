import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { jsonBody } from "./test/utils";
import {
  ApiError,
  CSRF_HEADER,
  NETWORK_ERROR_MESSAGE,
  buildUrl,
  createCollection,
  describeError,
  errorFromBody,
  errorMessage,
  getAudit,
  getSession,
  humaneDuration,
  listUsers,
  setCsrfToken,
  setUnauthenticatedHandler,
  signIn,
  streamMessage,
  uploadDocument,
  type Citation,
} from "./api";

const user = { id: "u1", username: "alice", role: "user", state: "active", created_at: "2026-01-01T00:00:00Z" };

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function sse(chunks: string[], status = 200): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(encoder.encode(c));
      controller.close();
    },
  });
  return new Response(body, { status, headers: { "Content-Type": "text/event-stream" } });
}

type FetchArgs = [string, RequestInit];

let fetchMock: ReturnType<typeof vi.fn<(...args: FetchArgs) => Promise<Response>>>;

beforeEach(() => {
  fetchMock = vi.fn<(...args: FetchArgs) => Promise<Response>>();
  vi.stubGlobal("fetch", fetchMock);
  setCsrfToken(null);
  setUnauthenticatedHandler(null);
});

afterEach(() => {
  vi.unstubAllGlobals();
});

function headersOf(call: FetchArgs | undefined): Record<string, string> {
  return (call?.[1].headers ?? {}) as Record<string, string>;
}

describe("errors", () => {
  it("uses the API's code, message and details", () => {
    const err = errorFromBody(
      422,
      JSON.stringify({
        error: {
          code: "validation_failed",
          message: "the password is not accepted: use at least 12 characters; add a digit",
          details: {
            password: [
              { rule: "min_length", message: "use at least 12 characters" },
              { rule: "digit", message: "add a digit" },
            ],
          },
        },
      }),
    );
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(422);
    expect(err.code).toBe("validation_failed");
    expect(describeError(err)).toEqual({
      message: "the password is not accepted",
      items: ["use at least 12 characters", "add a digit"],
    });
    expect(errorMessage(err)).toBe("the password is not accepted: use at least 12 characters; add a digit");
  });

  it("explains answers that are not the API's JSON by their status", () => {
    const err = errorFromBody(502, "<html>Bad Gateway</html>");
    expect(err.code).toBe("http_502");
    expect(err.message).toMatch(/bad gateway/i);
    expect(err.message).toContain("502");
  });

  it("adds Retry-After to a throttled sign-in", () => {
    const err = errorFromBody(429, JSON.stringify({ error: { code: "too_many_requests", message: "too many failed sign-ins" } }), "30");
    expect(err.retryAfter).toBe(30);
    expect(describeError(err).message).toBe("too many failed sign-ins (try again in 30 seconds)");
  });

  it("reports an unreachable server as such", async () => {
    fetchMock.mockRejectedValue(new TypeError("Failed to fetch"));
    await expect(listUsers()).rejects.toMatchObject({ status: 0, code: "network", message: NETWORK_ERROR_MESSAGE });
  });

  it("never shows a database driver's words, even when a server sends them", () => {
    const raw = "database: error returned from database: (code: 5) database is locked";
    const err = errorFromBody(500, JSON.stringify({ error: { code: "internal", message: raw } }));
    const { message } = describeError(err);
    expect(message).not.toMatch(/code: 5|locked|error returned/);
    expect(message).toMatch(/try again/);
    expect(describeError(new TypeError("Cannot read properties of undefined (reading 'x')")).message).toMatch(
      /reload the page and try again/,
    );
  });

  it("says waits as people say them", () => {
    expect(humaneDuration(899)).toBe("15 minutes");
    expect(humaneDuration(60)).toBe("1 minute");
    expect(humaneDuration(40)).toBe("40 seconds");
    expect(humaneDuration(7200)).toBe("2 hours");
  });

  it("describes anything thrown", () => {
    expect(describeError(new Error("boom"))).toEqual({ message: "boom", items: [] });
    expect(describeError("??")).toEqual({ message: "something went wrong; reload the page and try again", items: [] });
  });
});

describe("requests", () => {
  it("builds query strings without empty values", () => {
    expect(buildUrl("/admin/audit", { event: "user.denied", user: "", before: 42, since: undefined })).toBe(
      "/api/v1/admin/audit?event=user.denied&before=42",
    );
  });

  it("keeps the CSRF token from sign-in and sends it on state changes only", async () => {
    fetchMock.mockResolvedValueOnce(json(200, { user, csrf_token: "tok-1" }));
    await signIn("alice", "pw");
    expect(headersOf(fetchMock.mock.calls[0])[CSRF_HEADER]).toBeUndefined();

    fetchMock.mockResolvedValueOnce(json(201, { id: "c1", name: "Docs" }));
    await createCollection("Docs", false);
    const [url, init] = fetchMock.mock.calls[1] ?? ["", {}];
    expect(url).toBe("/api/v1/collections");
    expect(init.method).toBe("POST");
    expect(init.credentials).toBe("same-origin");
    expect(headersOf(fetchMock.mock.calls[1])[CSRF_HEADER]).toBe("tok-1");
    expect(jsonBody(init)).toEqual({ name: "Docs", shared: false });

    fetchMock.mockResolvedValueOnce(json(200, { entries: [], next_before: null }));
    await getAudit({ event: "auth.sign_in" });
    expect(headersOf(fetchMock.mock.calls[2])[CSRF_HEADER]).toBeUndefined();
  });

  it("takes the token from the session check, and a 401 there means signed out", async () => {
    fetchMock.mockResolvedValueOnce(json(200, { user, csrf_token: "tok-2" }));
    expect((await getSession())?.user.username).toBe("alice");
    fetchMock.mockResolvedValueOnce(json(201, {}));
    await createCollection("x", true);
    expect(headersOf(fetchMock.mock.calls[1])[CSRF_HEADER]).toBe("tok-2");

    const onSignOut = vi.fn();
    setUnauthenticatedHandler(onSignOut);
    fetchMock.mockResolvedValueOnce(json(401, { error: { code: "unauthenticated", message: "sign in" } }));
    expect(await getSession()).toBeNull();
    expect(onSignOut).not.toHaveBeenCalled();
  });

  it("reports a 401 from any other call as the end of the session", async () => {
    const onSignOut = vi.fn();
    setUnauthenticatedHandler(onSignOut);
    fetchMock.mockResolvedValueOnce(json(401, { error: { code: "unauthenticated", message: "the session ended" } }));
    await expect(listUsers()).rejects.toMatchObject({ status: 401, message: "the session ended" });
    expect(onSignOut).toHaveBeenCalledOnce();
  });

  it("refreshes a stale CSRF token once and retries", async () => {
    setCsrfToken("old");
    fetchMock
      .mockResolvedValueOnce(json(403, { error: { code: "csrf_failed", message: "missing or wrong x-csrf-token" } }))
      .mockResolvedValueOnce(json(200, { user, csrf_token: "new" }))
      .mockResolvedValueOnce(json(201, { id: "c2" }));
    await expect(createCollection("y", false)).resolves.toEqual({ id: "c2" });
    expect(headersOf(fetchMock.mock.calls[0])[CSRF_HEADER]).toBe("old");
    expect(fetchMock.mock.calls[1]?.[0]).toBe("/api/v1/auth/session");
    expect(headersOf(fetchMock.mock.calls[2])[CSRF_HEADER]).toBe("new");
  });

  it("treats 204 as no content", async () => {
    setCsrfToken("t");
    fetchMock.mockResolvedValueOnce(new Response(null, { status: 204 }));
    const { deleteDocument } = await import("./api");
    await expect(deleteDocument("d1")).resolves.toBeUndefined();
    expect(fetchMock.mock.calls[0]?.[0]).toBe("/api/v1/documents/d1");
  });
});

describe("streamMessage", () => {
  const citation: Citation = {
    n: 1,
    document_id: "d1",
    document_name: "handbook.txt",
    chunk_id: 7,
    start: 0,
    end: 40,
    score: 0.9,
    text: "The gates open at dawn.",
  };
  const message = {
    id: 2,
    role: "assistant",
    content: "They open at dawn [1]",
    mode: "llm",
    citations: [citation],
    created_at: "2026-01-01T00:00:00Z",
  };

  it("delivers sources, then tokens, then the stored message", async () => {
    setCsrfToken("tok");
    fetchMock.mockResolvedValueOnce(
      sse([
        `event: sources\ndata: ${JSON.stringify({ citations: [citation] })}\n\n`,
        'event: token\ndata: {"text":"They open "}\n\nevent: tok',
        'en\ndata: {"text":"at dawn [1]"}\n\n',
        ": keep-alive\n\n",
        `event: done\ndata: ${JSON.stringify({ message })}\n\n`,
      ]),
    );
    const sources: Citation[][] = [];
    const tokens: string[] = [];
    const stored = await streamMessage("conv 1", "When?", {
      onSources: (c) => sources.push(c),
      onToken: (t) => tokens.push(t),
    });
    expect(stored).toEqual(message);
    expect(sources).toEqual([[citation]]);
    expect(tokens).toEqual(["They open ", "at dawn [1]"]);
    const [url, init] = fetchMock.mock.calls[0] ?? ["", {}];
    expect(url).toBe("/api/v1/conversations/conv%201/messages");
    expect(headersOf(fetchMock.mock.calls[0])[CSRF_HEADER]).toBe("tok");
    expect(headersOf(fetchMock.mock.calls[0]).Accept).toBe("text/event-stream");
    expect(jsonBody(init)).toEqual({ content: "When?" });
  });

  it("rejects with the stream's error event", async () => {
    fetchMock.mockResolvedValueOnce(
      sse([
        'event: token\ndata: {"text":"Par"}\n\n',
        'event: error\ndata: {"code":"llm_failed","message":"the model crashed mid-answer"}\n\n',
      ]),
    );
    await expect(streamMessage("c", "q", {})).rejects.toMatchObject({
      code: "llm_failed",
      message: "the model crashed mid-answer",
    });
  });

  it("rejects an HTTP error with the API's message", async () => {
    fetchMock.mockResolvedValueOnce(
      json(503, { error: { code: "unavailable", message: "the LLM server is unavailable; try again when it is back" } }),
    );
    await expect(streamMessage("c", "q", {})).rejects.toMatchObject({
      status: 503,
      message: "the LLM server is unavailable; try again when it is back",
    });
  });

  it("rejects a stream that ends before `done`", async () => {
    fetchMock.mockResolvedValueOnce(sse(['event: token\ndata: {"text":"Par"}\n\n']));
    await expect(streamMessage("c", "q", {})).rejects.toMatchObject({ code: "incomplete" });
  });
});

describe("uploadDocument", () => {
  class FakeXhr {
    static last: FakeXhr | null = null;
    method = "";
    url = "";
    headers: Record<string, string> = {};
    withCredentials = false;
    status = 0;
    responseText = "";
    body: FormData | null = null;
    private listeners: Record<string, (() => void)[]> = {};
    private uploadListeners: ((e: { lengthComputable: boolean; loaded: number; total: number }) => void)[] = [];
    upload = {
      addEventListener: (_: string, fn: (e: { lengthComputable: boolean; loaded: number; total: number }) => void) => {
        this.uploadListeners.push(fn);
      },
    };
    constructor() {
      FakeXhr.last = this;
    }
    open(method: string, url: string) {
      this.method = method;
      this.url = url;
    }
    setRequestHeader(name: string, value: string) {
      this.headers[name] = value;
    }
    getResponseHeader() {
      return null;
    }
    addEventListener(name: string, fn: () => void) {
      (this.listeners[name] ??= []).push(fn);
    }
    send(body: FormData) {
      this.body = body;
    }
    abort() {
      this.fire("abort");
    }
    progress(loaded: number, total: number) {
      for (const fn of this.uploadListeners) fn({ lengthComputable: true, loaded, total });
    }
    finish(status: number, body: unknown) {
      this.status = status;
      this.responseText = JSON.stringify(body);
      this.fire("load");
    }
    fire(name: string) {
      for (const fn of this.listeners[name] ?? []) fn();
    }
  }

  beforeEach(() => {
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
  });

  it("posts the file as multipart with the CSRF token and reports progress", async () => {
    setCsrfToken("tok");
    const progress: number[] = [];
    const file = new File(["hello"], "notes.txt", { type: "text/plain" });
    const done = uploadDocument("col 1", file, (p) => progress.push(p));
    const xhr = FakeXhr.last;
    expect(xhr?.method).toBe("POST");
    expect(xhr?.url).toBe("/api/v1/collections/col%201/documents");
    expect(xhr?.headers[CSRF_HEADER]).toBe("tok");
    expect((xhr?.body?.get("file") as File).name).toBe("notes.txt");
    xhr?.progress(50, 100);
    xhr?.finish(202, { id: "d1", status: "queued" });
    await expect(done).resolves.toEqual({ id: "d1", status: "queued" });
    expect(progress).toEqual([0.5, 1]);
  });

  it("rejects with the API's message, e.g. for a duplicate", async () => {
    const done = uploadDocument("c", new File(["x"], "a.txt"), () => undefined);
    FakeXhr.last?.finish(409, {
      error: { code: "duplicate", message: "this collection already has that document", details: { document_id: "d9" } },
    });
    await expect(done).rejects.toMatchObject({ status: 409, code: "duplicate", message: "this collection already has that document" });
  });

  it("reports a network failure", async () => {
    const done = uploadDocument("c", new File(["x"], "a.txt"), () => undefined);
    FakeXhr.last?.fire("error");
    await expect(done).rejects.toMatchObject({ code: "network" });
  });
});
