/**
 * Berth's HTTP API, typed. Every call goes through `request` (or, for the two that cannot use
 * fetch's JSON path, `streamMessage` and `uploadDocument`), so the CSRF header, credentials and
 * error handling live in one place; `describeError` is the one place that turns any failure into
 * words for people, using the API's own message.
 */

import { readEventStream } from "./sse";

export const API_BASE = "/api/v1";
export const CSRF_HEADER = "X-CSRF-Token";

// ---------------------------------------------------------------------------------------------
// Types (as the server sends them; see GET /api/openapi.json and docs/api-plan.md)

export type Role = "admin" | "user";
export type AccountState = "pending" | "active" | "denied" | "disabled";

export interface User {
  id: string;
  username: string;
  role: Role;
  state: AccountState;
  created_at: string;
}

export interface SessionInfo {
  user: User;
  csrf_token: string | null;
}

/** An OpenID provider people may sign in with. */
export interface SignInProvider {
  id: string;
  display_name: string;
}

/** The ways to sign in here (GET /auth/providers). */
export interface SignInOptions {
  password_login: boolean;
  providers: SignInProvider[];
  /** No active admin yet: the page says how to create the first one. */
  needs_admin?: boolean;
}

export interface Registered {
  user: User;
  message: string;
}

export interface PasswordPolicy {
  kind: "composition" | "length";
  min_length: number;
  rules: string[];
}

export interface TokenInfo {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface CreatedToken extends TokenInfo {
  /** The secret, shown this once. */
  token: string;
}

export type AuditOutcome = "success" | "failure" | "denied";

export interface AuditEntry {
  id: number;
  at: string;
  event: string;
  outcome: AuditOutcome;
  actor_id: string | null;
  actor_name: string | null;
  target_id: string | null;
  target_name: string | null;
  client_addr: string | null;
  user_agent: string | null;
  detail: string | null;
}

export interface AuditPage {
  entries: AuditEntry[];
  next_before?: number | null;
}

export interface AuditFilter {
  event?: string;
  user?: string;
  /** RFC 3339 */
  since?: string;
  /** RFC 3339 */
  until?: string;
  before?: number;
  limit?: number;
}

/** The audit events the server knows (GET /admin/audit?event= accepts only these). */
export const AUDIT_EVENTS = [
  "user.registered",
  "user.approved",
  "user.denied",
  "user.disabled",
  "user.enabled",
  "user.role_changed",
  "auth.sign_in",
  "auth.sign_out",
  "auth.lockout",
  "password.changed",
  "password.reset",
  "token.created",
  "token.revoked",
  "admin.bootstrap",
  "authz.denied",
  "user.unlocked",
  "collection.shared",
  "collection.member_added",
  "collection.member_removed",
  "document.uploaded",
  "document.deleted",
  "settings.changed",
] as const;

export interface ServerStatus {
  llm: { provider: "ollama" | "openai" | null; model: string | null };
  embeddings: {
    provider: "ollama" | "openai" | null;
    model: string | null;
    dimension?: number | null;
  };
  retrieval: "hybrid" | "lexical";
  version: string;
}

export interface Collection {
  id: string;
  name: string;
  shared: boolean;
  owner: { id: string; username: string };
  role: "owner" | "member";
  document_count: number;
  created_at?: string;
}

export type DocumentStatus = "queued" | "processing" | "ready" | "failed";

export interface DocumentInfo {
  id: string;
  collection_id: string;
  filename: string;
  media_type: string;
  size: number;
  status: DocumentStatus;
  /** 0.0 to 1.0 */
  progress: number;
  error: string | null;
  chunk_count: number;
  created_at: string;
}

export interface Chunk {
  id: number;
  document_id: string;
  document_name: string;
  ordinal: number;
  text: string;
  start: number;
  end: number;
  /** Text of the document just before the passage. */
  before: string;
  /** Text of the document just after the passage. */
  after: string;
}

export interface Citation {
  n: number;
  document_id: string;
  document_name: string;
  chunk_id: number;
  start: number;
  end: number;
  score: number;
  text: string;
}

export interface Message {
  id: number;
  role: "user" | "assistant";
  content: string;
  mode: "llm" | "extractive" | null;
  citations: Citation[];
  /** For answers: the asker's thumbs up or down. */
  feedback?: Vote | null;
  created_at: string;
}

export type Vote = "up" | "down";

export interface Conversation {
  id: string;
  title: string;
  /** The collections it answers from; empty: every readable one. */
  collection_ids?: string[];
  /** The documents it answers from; when not empty, they (not the collections) are the scope. */
  document_ids?: string[];
  created_at: string;
  updated_at: string;
}

export interface ConversationDetail extends Conversation {
  collection_ids: string[];
  document_ids?: string[];
  messages: Message[];
}

// ---------------------------------------------------------------------------------------------
// Errors

/** A failed call: the API's `{"error": {"code", "message", "details"?}}`, or what went wrong
 * on the way (status 0: no answer). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  /** Seconds, from Retry-After, when the server asked us to wait. */
  readonly retryAfter: number | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    details?: unknown,
    retryAfter?: number,
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const STATUS_WORDS: Record<number, string> = {
  400: "the request was not understood",
  401: "you are not signed in",
  403: "you are not allowed to do that",
  404: "not found",
  408: "the request took too long",
  409: "that conflicts with the current state",
  413: "that is too large",
  415: "that type of file is not supported",
  422: "that was not accepted",
  429: "too many attempts; wait a little",
  500: "something went wrong on the server; try again, and if it keeps happening ask your admin to look at the server log",
  502: "the server cannot be reached (bad gateway)",
  503: "the server is unavailable; try again shortly",
  504: "the server took too long to answer",
};

/** Builds the error for a non-2xx answer from its status, headers and body text. */
export function errorFromBody(
  status: number,
  bodyText: string,
  retryAfterHeader?: string | null,
): ApiError {
  const retryAfter =
    retryAfterHeader && /^\d+$/.test(retryAfterHeader.trim())
      ? Number(retryAfterHeader.trim())
      : undefined;
  try {
    const parsed: unknown = JSON.parse(bodyText);
    if (isRecord(parsed) && isRecord(parsed.error)) {
      const { code, message, details } = parsed.error;
      if (typeof message === "string" && message !== "") {
        return new ApiError(
          status,
          typeof code === "string" ? code : "error",
          message,
          details,
          retryAfter,
        );
      }
    }
  } catch {
    // Not JSON: a proxy's error page, say. Fall through to the status's meaning.
  }
  const words = STATUS_WORDS[status] ?? "the request failed";
  return new ApiError(status, `http_${status}`, `${words} (HTTP ${status})`, undefined, retryAfter);
}

async function errorFromResponse(res: Response): Promise<ApiError> {
  let text = "";
  try {
    text = await res.text();
  } catch {
    // The body could not be read; the status still says something.
  }
  return errorFromBody(res.status, text, res.headers.get("Retry-After"));
}

export const NETWORK_ERROR_MESSAGE = "cannot reach the Berth server; check your connection";

function networkError(): ApiError {
  return new ApiError(0, "network", NETWORK_ERROR_MESSAGE);
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === "AbortError";
}

/** What to show people for any failure: the API's message, plus listed items such as each
 * password rule that was broken. */
export function describeError(err: unknown): { message: string; items: string[] } {
  if (err instanceof ApiError) {
    const items: string[] = [];
    if (isRecord(err.details) && Array.isArray(err.details.password)) {
      for (const rule of err.details.password) {
        if (isRecord(rule) && typeof rule.message === "string") items.push(rule.message);
      }
    }
    let message = err.message;
    // The message already lists the rules after a colon; shown as a list, keep the lead only.
    if (items.length > 0) {
      const colon = message.indexOf(":");
      if (colon > 0) message = message.slice(0, colon);
    }
    if (err.status === 429 && err.retryAfter !== undefined && !/try again in/.test(message)) {
      message = `${message} (try again in ${humaneDuration(err.retryAfter)})`;
    }
    if (looksInternal(message)) {
      // A proxy or an old server may still send a driver's words: never show those.
      message = STATUS_WORDS[500] ?? "something went wrong on the server";
    }
    return { message, items };
  }
  // A bug in the page (TypeError and kin) is no sentence for people either.
  const programming = err instanceof TypeError || err instanceof ReferenceError || err instanceof SyntaxError;
  if (err instanceof Error && err.message && !programming && !looksInternal(err.message)) {
    return { message: err.message, items: [] };
  }
  return { message: "something went wrong; reload the page and try again", items: [] };
}

/** A wait as people say it: "15 minutes", "1 minute", "40 seconds" (rounded up). */
export function humaneDuration(secs: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (secs < 60) return plural(Math.max(1, Math.ceil(secs)), "second");
  if (secs < 3600) return plural(Math.ceil(secs / 60), "minute");
  return plural(Math.ceil(secs / 3600), "hour");
}

/** Words of a program rather than of a person: a database driver's error, a panic, a code. */
export function looksInternal(message: string): boolean {
  return /error returned from database|\(code: \d+\)|sqlx|SQLSTATE|panicked at|stack backtrace|traceback/i.test(message);
}

export function errorMessage(err: unknown): string {
  const { message, items } = describeError(err);
  return items.length > 0 ? `${message}: ${items.join("; ")}` : message;
}

// ---------------------------------------------------------------------------------------------
// The session's CSRF token, and what to do when the session ends

let csrfToken: string | null = null;
let onUnauthenticated: (() => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export function getCsrfToken(): string | null {
  return csrfToken;
}

/** Called when any call (other than sign-in and the session check) answers 401. */
export function setUnauthenticatedHandler(handler: (() => void) | null): void {
  onUnauthenticated = handler;
}

function isStateChange(method: string): boolean {
  return !["GET", "HEAD", "OPTIONS"].includes(method.toUpperCase());
}

// ---------------------------------------------------------------------------------------------
// The request function

export type Query = Record<string, string | number | boolean | null | undefined>;

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return `${API_BASE}${path}${qs ? `?${qs}` : ""}`;
}

interface RequestOptions {
  json?: unknown;
  query?: Query;
  signal?: AbortSignal;
  /** Do not report a 401 as "the session ended" (sign-in and the session check expect it). */
  expect401?: boolean;
  headers?: Record<string, string>;
}

async function send(method: string, path: string, opts: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", ...opts.headers };
  let body: string | undefined;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  if (isStateChange(method) && csrfToken) headers[CSRF_HEADER] = csrfToken;
  try {
    return await fetch(buildUrl(path, opts.query), {
      method,
      headers,
      body: body ?? null,
      credentials: "same-origin",
      signal: opts.signal ?? null,
    });
  } catch (err) {
    if (isAbort(err)) throw err;
    throw networkError();
  }
}

/** Sends a request, and for a state change refused for its CSRF token (another tab signed in
 * again, say) fetches the session's current token and tries once more. */
async function sendChecked(method: string, path: string, opts: RequestOptions): Promise<Response> {
  let res = await send(method, path, opts);
  if (res.status === 403 && isStateChange(method)) {
    const err = await errorFromResponse(res.clone());
    if (err.code === "csrf_failed" && (await refreshCsrfToken())) {
      res = await send(method, path, opts);
    }
  }
  if (!res.ok) {
    const err = await errorFromResponse(res);
    if (err.status === 401 && !opts.expect401) onUnauthenticated?.();
    throw err;
  }
  return res;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await sendChecked(method, path, opts);
  if (res.status === 204 || res.status === 205) return undefined as T;
  const text = await res.text();
  if (text === "") return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, "bad_response", "the server's answer could not be read");
  }
}

async function refreshCsrfToken(): Promise<boolean> {
  try {
    const info = await request<SessionInfo>("GET", "/auth/session", { expect401: true });
    setCsrfToken(info.csrf_token);
    return info.csrf_token !== null;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Auth

/** The signed-in user, or null when nobody is. */
export async function getSession(signal?: AbortSignal): Promise<SessionInfo | null> {
  try {
    const info = await request<SessionInfo>("GET", "/auth/session", {
      expect401: true,
      ...(signal ? { signal } : {}),
    });
    setCsrfToken(info.csrf_token);
    return info;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setCsrfToken(null);
      return null;
    }
    throw err;
  }
}

export async function signIn(username: string, password: string): Promise<SessionInfo> {
  const info = await request<SessionInfo>("POST", "/auth/sign-in", {
    json: { username, password },
    expect401: true,
  });
  setCsrfToken(info.csrf_token);
  return info;
}

/** Signs out of Berth: the provider's end-session URL when the session came from one that has it. */
export async function signOut(): Promise<string | null> {
  try {
    const out = await request<{ end_session_url: string } | undefined>("POST", "/auth/sign-out", { expect401: true });
    return out?.end_session_url ?? null;
  } finally {
    setCsrfToken(null);
  }
}

export function getSignInOptions(): Promise<SignInOptions> {
  return request("GET", "/auth/providers");
}

/** Where a provider's button starts signing in: a page navigation, not a fetch. */
export function providerStartUrl(id: string): string {
  return `/api/v1/auth/oidc/${encodeURIComponent(id)}/start`;
}

export function register(username: string, password: string): Promise<Registered> {
  return request("POST", "/auth/register", { json: { username, password } });
}

export function getPasswordPolicy(): Promise<PasswordPolicy> {
  return request("GET", "/auth/password-policy");
}

// ---------------------------------------------------------------------------------------------
// Account

export async function changePassword(currentPassword: string, newPassword: string): Promise<void> {
  await request<undefined>("POST", "/account/password", {
    json: { current_password: currentPassword, new_password: newPassword },
  });
  setCsrfToken(null);
}

export function listTokens(): Promise<TokenInfo[]> {
  return request("GET", "/account/tokens");
}

export function createToken(name: string): Promise<CreatedToken> {
  return request("POST", "/account/tokens", { json: { name } });
}

export function revokeToken(id: string): Promise<void> {
  return request("DELETE", `/account/tokens/${encodeURIComponent(id)}`);
}

// ---------------------------------------------------------------------------------------------
// Admin

export function listUsers(state?: AccountState): Promise<User[]> {
  return request("GET", "/admin/users", { query: { state } });
}

export type UserAction = "approve" | "deny" | "disable" | "enable";

export function changeUserState(id: string, action: UserAction): Promise<User> {
  return request("POST", `/admin/users/${encodeURIComponent(id)}/${action}`);
}

export function setUserRole(id: string, role: Role): Promise<User> {
  return request("PUT", `/admin/users/${encodeURIComponent(id)}/role`, { json: { role } });
}

export function getAudit(filter: AuditFilter, signal?: AbortSignal): Promise<AuditPage> {
  return request("GET", "/admin/audit", {
    query: { ...filter },
    ...(signal ? { signal } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// Status, collections, documents

export function getStatus(): Promise<ServerStatus> {
  return request("GET", "/status");
}

export function listCollections(): Promise<Collection[]> {
  return request("GET", "/collections");
}

export function createCollection(name: string, shared: boolean): Promise<Collection> {
  return request("POST", "/collections", { json: { name, shared } });
}

export function deleteCollection(id: string): Promise<void> {
  return request("DELETE", `/collections/${encodeURIComponent(id)}`);
}

export function listDocuments(collectionId: string): Promise<DocumentInfo[]> {
  return request("GET", `/collections/${encodeURIComponent(collectionId)}/documents`);
}

export function deleteDocument(id: string): Promise<void> {
  return request("DELETE", `/documents/${encodeURIComponent(id)}`);
}

export function retryDocument(id: string): Promise<DocumentInfo> {
  return request("POST", `/documents/${encodeURIComponent(id)}/retry`);
}

export function documentFileUrl(id: string): string {
  return buildUrl(`/documents/${encodeURIComponent(id)}/file`);
}

export function getChunk(id: number | string, signal?: AbortSignal): Promise<Chunk> {
  return request("GET", `/chunks/${encodeURIComponent(String(id))}`, signal ? { signal } : {});
}

/**
 * Uploads one file into a collection (multipart, field `file`), reporting progress from 0 to 1.
 * XMLHttpRequest, not fetch: only it reports upload progress.
 */
export function uploadDocument(
  collectionId: string,
  file: File,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<DocumentInfo> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", buildUrl(`/collections/${encodeURIComponent(collectionId)}/documents`));
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    if (csrfToken) xhr.setRequestHeader(CSRF_HEADER, csrfToken);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(Math.min(1, e.loaded / e.total));
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        try {
          resolve(JSON.parse(xhr.responseText) as DocumentInfo);
        } catch {
          reject(new ApiError(xhr.status, "bad_response", "the server's answer could not be read"));
        }
        return;
      }
      const err = errorFromBody(xhr.status, xhr.responseText, xhr.getResponseHeader("Retry-After"));
      if (err.status === 401) onUnauthenticated?.();
      reject(err);
    });
    xhr.addEventListener("error", () => reject(networkError()));
    xhr.addEventListener("abort", () => reject(new DOMException("upload cancelled", "AbortError")));
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

// ---------------------------------------------------------------------------------------------
// Conversations and chat

export function listConversations(): Promise<Conversation[]> {
  return request("GET", "/conversations");
}

export function createConversation(
  body: { title?: string; collection_ids?: string[]; document_ids?: string[] } = {},
): Promise<Conversation> {
  return request("POST", "/conversations", { json: body });
}

export function getConversation(id: string): Promise<ConversationDetail> {
  return request("GET", `/conversations/${encodeURIComponent(id)}`);
}

/** Renames a conversation, or changes the collections it answers from (`[]`: all). */
export function updateConversation(
  id: string,
  change: { title?: string; collection_ids?: string[]; document_ids?: string[] },
): Promise<Conversation> {
  return request("PATCH", `/conversations/${encodeURIComponent(id)}`, { json: change });
}

/** Your thumbs up or down on an answer (null takes it back). */
export function setFeedback(conversationId: string, messageId: number, vote: Vote | null): Promise<void> {
  return request(
    "PUT",
    `/conversations/${encodeURIComponent(conversationId)}/messages/${messageId}/feedback`,
    { json: { vote } },
  );
}

export function getDocument(id: string): Promise<DocumentInfo> {
  return request("GET", `/documents/${encodeURIComponent(id)}`);
}

export function deleteConversation(id: string): Promise<void> {
  return request("DELETE", `/conversations/${encodeURIComponent(id)}`);
}

export interface StreamHandlers {
  /** The passages the answer will cite, before any token. */
  onSources?: (citations: Citation[]) => void;
  /** The next piece of the answer. */
  onToken?: (text: string) => void;
}

function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new ApiError(200, "bad_stream", "the answer stream could not be read");
  }
}

/**
 * Asks a question in a conversation and streams the answer: `POST .../messages` answers
 * `text/event-stream` with `sources`, then `token`s, then `done` (the stored message) or
 * `error`. Resolves with the stored assistant message; rejects with an ApiError for an HTTP
 * error, an `error` event, or a stream that ends early.
 */
export async function streamMessage(
  conversationId: string,
  content: string,
  handlers: StreamHandlers,
  signal?: AbortSignal,
): Promise<Message> {
  const res = await sendChecked("POST", `/conversations/${encodeURIComponent(conversationId)}/messages`, {
    json: { content },
    headers: { Accept: "text/event-stream" },
    ...(signal ? { signal } : {}),
  });
  if (!res.body) throw new ApiError(res.status, "bad_stream", "the server sent no answer");
  for await (const event of readEventStream(res.body)) {
    const data = parseJson(event.data);
    switch (event.event) {
      case "sources":
        if (isRecord(data) && Array.isArray(data.citations)) {
          handlers.onSources?.(data.citations as Citation[]);
        }
        break;
      case "token":
        if (isRecord(data) && typeof data.text === "string") handlers.onToken?.(data.text);
        break;
      case "done":
        if (isRecord(data) && isRecord(data.message)) return data.message as unknown as Message;
        throw new ApiError(200, "bad_stream", "the answer stream could not be read");
      case "error": {
        const code = isRecord(data) && typeof data.code === "string" ? data.code : "error";
        const message =
          isRecord(data) && typeof data.message === "string" ? data.message : "the answer failed";
        throw new ApiError(200, code, message);
      }
      default:
        break;
    }
  }
  throw new ApiError(200, "incomplete", "the answer stopped before it was complete; try again");
}
