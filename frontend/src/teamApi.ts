/**
 * The API calls of the team's screens: sharing a collection and its members, an admin's help with
 * accounts, a document's text for the viewer. They go through `request` in `api.ts`, so the CSRF
 * header and error handling stay in one place.
 */

import { request, type Collection, type User } from "./api";

// ---------------------------------------------------------------------------------------------
// Sharing

export interface Member {
  id: string;
  username: string;
}

/** Shares a private collection (members can then be added), or makes a memberless one private. */
export function setCollectionShared(id: string, shared: boolean): Promise<Collection> {
  return request("PATCH", `/collections/${encodeURIComponent(id)}`, { json: { shared } });
}

export function listMembers(collectionId: string): Promise<Member[]> {
  return request("GET", `/collections/${encodeURIComponent(collectionId)}/members`);
}

export function addMember(collectionId: string, username: string): Promise<void> {
  return request("POST", `/collections/${encodeURIComponent(collectionId)}/members`, { json: { username } });
}

export function removeMember(collectionId: string, userId: string): Promise<void> {
  return request(
    "DELETE",
    `/collections/${encodeURIComponent(collectionId)}/members/${encodeURIComponent(userId)}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Accounts, as admins see them

/** A user with the sign-in lock, when repeated failures put one on. */
export interface Account extends User {
  /** RFC 3339; absent or null when not locked. */
  locked_until?: string | null;
}

export function listAccounts(state?: User["state"]): Promise<Account[]> {
  return request("GET", "/admin/users", { query: { state } });
}

export function resetPassword(id: string, password: string): Promise<User> {
  return request("POST", `/admin/users/${encodeURIComponent(id)}/password`, { json: { password } });
}

export function unlockUser(id: string): Promise<User> {
  return request("POST", `/admin/users/${encodeURIComponent(id)}/unlock`);
}

/** How an account's state reads to people: a locked one is "locked (until 14:05)". */
export function stateLabel(account: Account, now: Date = new Date()): string {
  const until = account.locked_until ? new Date(account.locked_until) : null;
  if (until && until > now) {
    const time = until.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    return `locked (until ${time})`;
  }
  return account.state;
}

// ---------------------------------------------------------------------------------------------
// A document's text

export interface PassageSpan {
  id: number;
  /** Character (code point) offsets into `text`. */
  start: number;
  end: number;
}

export interface DocumentText {
  id: string;
  collection_id: string;
  filename: string;
  media_type: string;
  text: string;
  passages: PassageSpan[];
}

export function getDocumentText(id: string): Promise<DocumentText> {
  return request("GET", `/documents/${encodeURIComponent(id)}/text`);
}

/**
 * Splits a text around one passage: [before, passage, after], by code point offsets as the
 * server counts them (Rust `char`s), not UTF-16 units.
 */
export function splitAround(text: string, span: PassageSpan | undefined): [string, string, string] {
  if (!span) return [text, "", ""];
  const chars = Array.from(text);
  const start = Math.max(0, Math.min(span.start, chars.length));
  const end = Math.max(start, Math.min(span.end, chars.length));
  return [chars.slice(0, start).join(""), chars.slice(start, end).join(""), chars.slice(end).join("")];
}

// ---------------------------------------------------------------------------------------------
// Run-time settings

export interface RuntimeSetting {
  key: string;
  value: string | null;
  default: string | null;
  /** `admin`: changed on this page; `server`: the server's settings (file, environment, default). */
  source: "admin" | "server";
  updated_by?: string | null;
  updated_at?: string | null;
}

export function getRuntimeSettings(): Promise<RuntimeSetting[]> {
  return request("GET", "/admin/settings");
}

/** Changes settings; null puts one back to the server's value. All or nothing. */
export function changeRuntimeSettings(changes: Record<string, string | number | boolean | null>): Promise<RuntimeSetting[]> {
  return request("PUT", "/admin/settings", { json: changes });
}
