// Browser tests of what a small team does in Berth besides chatting (issue #19): sharing a
// collection, uploading by drop, reading a cited passage, an admin's help with accounts, the
// run-time settings, and words people understand. Each runs at desktop (light) and on a
// 390×844 phone (dark), and checks the page fits and passes axe-core.
//
// One server for the file; every test makes its own users and collections (names carry the
// layout), so the tests do not depend on each other.

import assert from "node:assert/strict";
import { after, afterEach, before } from "node:test";
import { ADMIN, HANDBOOK, apiOf, checkPage, eachLayout, setUp, signIn } from "./harness.mjs";

const PASSWORD = "Harbour-Crew-Secret-2026!";

let env;
/** The admin's API, for setting up what a test is not about. */
let asAdmin;
/** The admin's setup page, whose session also makes the calls apiOf has no verb for. */
let adminSetup;

before(async () => {
  env = await setUp({
    serverEnv: { BERTH_REGISTER_MAX_PER_ADDRESS: "100", BERTH_LOGIN_MAX_FAILURES: "3" },
  });
  adminSetup = await env.newPage("admin-setup");
  await signIn(adminSetup, ADMIN.username, ADMIN.password);
  asAdmin = await apiOf(adminSetup);
});

after(async () => {
  await env?.tearDown();
});

afterEach(() => {
  const problems = env?.problems.splice(0) ?? [];
  assert.deepEqual(problems, [], `pages logged errors:\n${problems.join("\n")}`);
});

/**
 * A page of `layout` that asks for reduced motion: colours then change at once, so a check
 * never sees a button halfway through a transition (and it is what many people choose).
 */
function newPage(label, layout) {
  return env.newPage(label, { layout, reducedMotion: "reduce" });
}

/** PUT as the admin (apiOf has get, post and delete). */
async function putAsAdmin(path, data) {
  const request = adminSetup.context().request;
  const session = await (await request.get("/api/v1/auth/session")).json();
  const headers = { "X-CSRF-Token": session.csrf_token };
  const response = await request.fetch(`/api/v1${path}`, { method: "PUT", headers, data });
  assert.ok(response.ok(), await response.text());
}

/** A short tag for user names: `d` for desktop, `p` for phone. */
const tag = (layout) => layout.slice(0, 1);

/** Registers `name` (waiting for approval); its id. */
async function register(name) {
  const anonymous = await env.browser.newContext({ baseURL: env.baseURL });
  const response = await anonymous.request.post("/api/v1/auth/register", { data: { username: name, password: PASSWORD } });
  assert.ok(response.ok(), await response.text());
  const { user } = await response.json();
  await anonymous.close();
  return user.id;
}

/** An approved user signed in on a page of `layout`, with their API. */
async function member(name, layout) {
  const id = await register(name);
  await asAdmin.post(`/admin/users/${id}/approve`);
  const page = await newPage(name, layout);
  await signIn(page, name, PASSWORD);
  return { id, page, api: await apiOf(page) };
}

/** The admin, signed in on a page of `layout`. */
async function adminPage(layout) {
  const page = await newPage(`admin-${layout}`, layout);
  await signIn(page, ADMIN.username, ADMIN.password);
  return page;
}

/** The audit log's entries as shown: table rows on a desktop, blocks on a phone. */
function auditEntries(page) {
  return page.locator('[data-testid="audit-row"]:visible, [data-testid="audit-item"]:visible');
}

/** Drops `files` ({ name, text }) on `target` as a person dragging them from their desktop. */
async function drop(page, target, files) {
  const transfer = await page.evaluateHandle((files) => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(new File([f.text], f.name, { type: f.type ?? "text/plain" }));
    return dt;
  }, files);
  await target.dispatchEvent("dragover", { dataTransfer: transfer });
  await target.dispatchEvent("drop", { dataTransfer: transfer });
}

// Item 1: sharing from the UI.
eachLayout("an owner shares a private collection, adds a member by name and removes them", async (layout) => {
  const owner = await member(`owner-${tag(layout)}`, layout);
  const guest = await member(`guest-${tag(layout)}`, layout);
  const collection = await owner.api.post("/collections", { name: "Crew notes", shared: false });
  const page = owner.page;
  await page.goto(`/collections/${collection.id}`);
  const sharing = page.getByRole("region", { name: "Sharing" });
  await sharing.getByText("Only you can see this collection.").waitFor();
  await sharing.getByRole("button", { name: "Share with members" }).click();
  await sharing.getByText("The collection is shared.").waitFor();

  await sharing.getByLabel("User name").fill(`guest-${tag(layout)}`);
  await sharing.getByRole("button", { name: "Add member" }).click();
  await sharing.getByText(`guest-${tag(layout)} is now a member and can use this collection.`).waitFor();
  await sharing.getByRole("listitem").filter({ hasText: `guest-${tag(layout)}` }).waitFor();
  // A name that names nobody: the API's sentence, not a code.
  await sharing.getByLabel("User name").fill("nobody-here");
  await sharing.getByRole("button", { name: "Add member" }).click();
  await sharing.getByText("No active user named nobody-here; check the user name").waitFor();
  await checkPage(page, `sharing [${layout}]`);

  // The guest sees it now.
  await guest.page.goto("/documents");
  await guest.page.getByRole("link", { name: /Crew notes/ }).waitFor();

  page.once("dialog", (d) => void d.accept());
  await sharing.getByRole("button", { name: `Remove guest-${tag(layout)}` }).click();
  await sharing.getByText(`guest-${tag(layout)} was removed; they no longer see this collection.`).waitFor();
  await guest.page.reload();
  await guest.page.getByRole("heading", { name: "Documents" }).waitFor();
  assert.equal(await guest.page.getByRole("link", { name: /Crew notes/ }).count(), 0, "gone from the guest's list");
});

// Item 8 (and 11's duplicate): the drop zone and per-file states.
eachLayout("files dropped on the zone upload at once and show processing, ready or failed with why", async (layout) => {
  const { page, api } = await member(`dropper-${tag(layout)}`, layout);
  const collection = await api.post("/collections", { name: "Handbooks" });
  await page.goto(`/collections/${collection.id}`);
  const zone = page.getByTestId("drop-zone");
  await zone.waitFor();

  // A drop anywhere else is refused: the browser neither opens the file nor leaves Berth.
  const refused = await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(["x"], "stray.txt", { type: "text/plain" }));
    const event = new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true });
    document.querySelector("h1")?.dispatchEvent(event);
    return event.defaultPrevented;
  });
  assert.equal(refused, true, "a drop outside the zone is prevented");
  assert.match(new URL(page.url()).pathname, /^\/collections\//);

  // The embedder refuses for a moment: the upload is in, and says it is processing.
  env.llm.state.embedFailStatus = 503;
  try {
    await drop(page, zone, [{ name: "handbook.txt", text: HANDBOOK }]);
    await page.locator('[data-testid="upload"][data-phase="processing"]').filter({ hasText: "handbook.txt" }).waitFor();
  } finally {
    env.llm.state.embedFailStatus = null;
  }
  await checkPage(page, `uploads [${layout}]`);
  await drop(page, zone, [
    { name: "program.exe", text: "MZ\u0000\u0001binary", type: "application/octet-stream" },
    { name: "copy.txt", text: HANDBOOK },
  ]);
  const failedExe = page.locator('[data-testid="upload"][data-phase="failed"]').filter({ hasText: "program.exe" });
  await failedExe.getByRole("alert").waitFor();
  assert.doesNotMatch(await failedExe.innerText(), /HTTP 4\d\d|undefined/);
  // The same content again: the existing document is named by its file name, not an id.
  const duplicate = page.locator('[data-testid="upload"][data-phase="failed"]').filter({ hasText: "copy.txt" });
  await duplicate.getByText(/already in the collection as "handbook.txt"/).waitFor();
  await page
    .locator('[data-testid="upload"][data-phase="ready"]')
    .filter({ hasText: "handbook.txt" })
    .waitFor({ timeout: 30_000 });
  await page.locator('[data-testid="document-row"][data-status="ready"]').waitFor();
  await checkPage(page, `uploads done [${layout}]`);
});

// Feature: the document viewer.
eachLayout("a document opens at a cited passage, marked and in view", async (layout) => {
  const { page, api } = await member(`reader-${tag(layout)}`, layout);
  const collection = await api.post("/collections", { name: "Reading" });
  const doc = await api.upload(collection.id, "handbook.txt", HANDBOOK);
  await api.waitReady(doc.id);
  const { passages } = await api.get(`/documents/${doc.id}/text`);
  assert.ok(passages.length >= 3, "several passages");
  const last = passages.at(-1);

  // Reachable from the Documents page.
  await page.goto(`/collections/${collection.id}`);
  await page.getByRole("link", { name: "handbook.txt", exact: true }).click();
  await page.getByRole("heading", { name: "handbook.txt" }).waitFor();
  await page.getByRole("article", { name: "Document text" }).getByText(/Harbour handbook/).waitFor();

  await page.goto(`/documents/${doc.id}?passage=${last.id}`);
  const mark = page.getByTestId("cited-passage");
  await mark.waitFor();
  assert.match(await mark.innerText(), /cast off/);
  await page.waitForFunction(() => {
    const box = document.querySelector('[data-testid="cited-passage"]')?.getBoundingClientRect();
    return box && box.top >= 0 && box.bottom <= window.innerHeight;
  });
  await checkPage(page, `viewer [${layout}]`);
  await page.getByRole("link", { name: "Back to Reading" }).click();
  await page.getByRole("heading", { name: "Reading" }).waitFor();
});

// Item 7 and 13's lockout: an admin helps a locked-out user.
eachLayout("an admin sees a locked account, unlocks it, resets its password and disables it", async (layout) => {
  const name = `locked-${tag(layout)}`;
  const id = await register(name);
  await asAdmin.post(`/admin/users/${id}/approve`);
  const stranger = await env.browser.newContext({ baseURL: env.baseURL });
  for (let i = 0; i < 3; i += 1) {
    await stranger.request.post("/api/v1/auth/sign-in", { data: { username: name, password: "Wrong-password-1!" } });
  }
  const locked = await stranger.request.post("/api/v1/auth/sign-in", { data: { username: name, password: PASSWORD } });
  assert.equal(locked.status(), 429);
  assert.match((await locked.json()).error.message, /try again in 15 minutes/);
  await stranger.close();

  const page = await adminPage(layout);
  await page.goto("/admin/users");
  const row = page.getByTestId("user-row").filter({ hasText: name });
  await row.getByText(/^locked \(until \d\d:\d\d/).waitFor();
  await checkPage(page, `users [${layout}]`);
  await row.getByRole("button", { name: `Unlock ${name}` }).click();
  await page.getByText(`${name} is unlocked and can sign in again.`).waitFor();
  await row.getByText("active", { exact: true }).waitFor();

  await row.getByRole("button", { name: `Reset password of ${name}` }).click();
  const dialog = page.getByRole("dialog", { name: `New password for ${name}` });
  await dialog.getByLabel("New password").fill("short");
  await dialog.getByRole("button", { name: "Set password" }).click();
  await dialog.getByRole("alert").getByText(/password is not accepted/i).waitFor();
  await checkPage(page, `reset dialog [${layout}]`);
  await dialog.getByLabel("New password").fill("Brand-New-Secret-2026!");
  await dialog.getByRole("button", { name: "Set password" }).click();
  await page.getByText(`${name} has a new password; their sessions ended.`, { exact: false }).waitFor();
  const user = await newPage(name, layout);
  await signIn(user, name, "Brand-New-Secret-2026!");

  page.once("dialog", (d) => void d.accept());
  await row.getByRole("button", { name: `Disable ${name}` }).click();
  await row.getByText("disabled", { exact: true }).waitFor();
  await row.getByRole("button", { name: `Enable ${name}` }).click();
  await row.getByText("active", { exact: true }).waitFor();

  // The audit log says a lockout is a refusal, and who unlocked whom.
  await page.goto("/admin/audit");
  await page.getByLabel("Event").selectOption("auth.lockout");
  await page.getByLabel("User (name or id)").fill(name);
  await page.getByRole("button", { name: "Filter" }).click();
  const entry = auditEntries(page).filter({ hasText: "auth.lockout" });
  await entry.getByText("denied", { exact: true }).waitFor();
});

// Item 13: the approval badge, the confirmation and the audit of uploads and membership.
eachLayout("admins see how many wait for approval, approve with a confirmation, and read uploads in the audit log", async (layout) => {
  const page = await adminPage(layout);
  const pending = await asAdmin.get("/admin/users?state=pending");
  const name = `waiting-${tag(layout)}`;
  await register(name);
  await page.reload();
  const badge = page.getByRole("navigation", { name: "Main" }).getByTestId("pending-badge");
  await badge.getByText(String(pending.length + 1), { exact: false }).waitFor();
  await checkPage(page, `badge [${layout}]`);
  await page.getByRole("link", { name: /Admin/ }).click();
  await page.getByRole("button", { name: `Approve ${name}` }).click();
  await page.getByText(`${name} is approved and can sign in now.`).waitFor();
  if (pending.length === 0) await badge.waitFor({ state: "detached" });

  const uploader = await member(`auditee-${tag(layout)}`, layout);
  const collection = await uploader.api.post("/collections", { name: "Audited", shared: true });
  await uploader.api.upload(collection.id, "ledger.txt", "The ledger of moorings.");
  await uploader.api.post(`/collections/${collection.id}/members`, { username: name });
  for (const [event, text] of [
    ["document.uploaded", "ledger.txt"],
    ["collection.member_added", name],
  ]) {
    await page.goto("/admin/audit");
    await page.getByLabel("Event").selectOption(event);
    await page.getByLabel("User (name or id)").fill(`auditee-${tag(layout)}`);
    await page.getByRole("button", { name: "Filter" }).click();
    await auditEntries(page).filter({ hasText: event }).filter({ hasText: text }).waitFor();
  }
  await checkPage(page, `audit [${layout}]`);
});

// Feature: run-time settings.
eachLayout("an admin changes settings at run time, sees where each comes from, and closing registration works at once", async (layout) => {
  const page = await adminPage(layout);
  await page.goto("/admin/settings");
  const k = page.getByTestId("setting-retrieval_k");
  await k.getByText("From the server's settings", { exact: false }).waitFor();
  await page.getByLabel("Passages per question").fill("0");
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByRole("alert").getByText(/from 1 to 50/).waitFor();
  await page.getByLabel("Passages per question").fill("4");
  await page.getByLabel("Registration").selectOption("false");
  try {
    await closedRegistration(page, k, layout);
  } finally {
    // Back to the server's values whatever happened: the other tests register people.
    await putAsAdmin("/admin/settings", { registration_open: null, retrieval_k: null });
  }
});

async function closedRegistration(page, k, layout) {
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Saved. The new values are in effect.").waitFor();
  await k.getByText(/Changed here by root/).waitFor();
  await checkPage(page, `settings [${layout}]`);

  const visitor = await newPage(`visitor-${layout}`, layout);
  await visitor.goto("/register");
  await visitor.getByLabel("User name").fill(`late-${tag(layout)}`);
  await visitor.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await visitor.getByLabel("Repeat the password").fill(PASSWORD);
  await visitor.getByRole("button", { name: "Register" }).click();
  await visitor.getByRole("alert").getByText(/registration is closed here/i).waitFor();

  // Back to the server's values, from the page.
  await page.getByRole("button", { name: "Use the server's value for Registration" }).click();
  await page.getByTestId("setting-registration_open").getByText("From the server's settings", { exact: false }).waitFor();
  await page.getByRole("button", { name: "Use the server's value for Passages per question" }).click();
  await k.getByText("From the server's settings", { exact: false }).waitFor();
}

// Item 10: guidance where a page is empty, and before the first admin exists.
eachLayout("empty pages say what to do first", async (layout) => {
  const { page } = await member(`newcomer-${tag(layout)}`, layout);
  await page.goto("/documents");
  await page.getByText("Start with a collection").waitFor();
  await checkPage(page, `empty documents [${layout}]`);
  await page.getByLabel("Name").fill("First");
  await page.getByRole("button", { name: "Create collection" }).click();
  await page.getByText(/No documents here yet. Drop files into the box above/).waitFor();

  // Before any admin exists the sign-in options say so (the API's own test proves the field
  // follows the accounts; this server has its admin, so the answer is staged here).
  const visitor = await newPage(`before-admin-${layout}`, layout);
  await visitor.route("**/api/v1/auth/providers", async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, json: { ...(await response.json()), needs_admin: true } });
  });
  await visitor.goto("/sign-in");
  await visitor.getByText("No administrator yet").waitFor();
  await visitor.getByText("berth admin create --username NAME").waitFor();
  await checkPage(visitor, `sign-in before an admin [${layout}]`);
});

// Item 4: no raw internals, whatever the server says.
eachLayout("a server error shows a sentence with what to do, never the database's words", async (layout) => {
  const { page, api } = await member(`unlucky-${tag(layout)}`, layout);
  const collection = await api.post("/collections", { name: "Busy" });
  await page.goto(`/collections/${collection.id}`);
  const raw = "database: error returned from database: (code: 5) database is locked";
  await page.route("**/api/v1/collections/*/documents", (route) =>
    route.request().method() === "POST"
      ? route.fulfill({ status: 500, json: { error: { code: "internal", message: raw } } })
      : route.fallback(),
  );
  await page.getByLabel("Files to upload").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("Notes.") });
  const failed = page.locator('[data-testid="upload"][data-phase="failed"]');
  await failed.getByText(/something went wrong on the server; try again/).waitFor();
  assert.doesNotMatch(await page.locator("body").innerText(), /code: 5|database is locked|error returned/);

  // A proxy's page instead of the API's JSON says what the status means.
  await page.route("**/api/v1/collections", (route) => route.fulfill({ status: 502, body: "<html>Bad Gateway</html>" }));
  await page.goto("/documents");
  await page.getByRole("alert").getByText(/cannot be reached/).waitFor();
  await checkPage(page, `errors [${layout}]`);
  // The browser logs the staged failures; they are this test's point.
  env.problems.splice(0, env.problems.length, ...env.problems.filter((p) => !/status of (500|502)/.test(p)));
});
