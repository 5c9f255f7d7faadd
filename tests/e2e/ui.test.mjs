// Browser tests of Berth's web UI against the real server: `cargo xtask e2e`.
//
// One server, one model server and one browser for the file; the tests run in order and build
// on each other (the user approved in the first asks questions in the later ones).

import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { ADMIN, HANDBOOK, setUp, signIn } from "./harness.mjs";

const ALICE = { username: "alice", password: "Lighthouse-Keeper-2026!" };
const MALLORY = { username: "mallory", password: "Pirate-Flag-Hoisted-77!" };

let env;
/** Pages that stay open between tests. */
const pages = {};

before(async () => {
  env = await setUp();
});

after(async () => {
  await env?.tearDown();
});

afterEach(() => {
  // The suite fails if any page logged a console error or threw.
  const problems = env?.problems.splice(0) ?? [];
  assert.deepEqual(problems, [], `pages logged errors:\n${problems.join("\n")}`);
});

test("a new user registers, waits for approval, is approved and signs in", { timeout: 120_000 }, async () => {
  const alice = await env.newPage("alice");
  pages.alice = alice;
  await alice.goto("/");
  await alice.getByRole("heading", { name: "Sign in" }).waitFor();
  assert.match(new URL(alice.url()).pathname, /^\/sign-in/);
  await env.screenshot(alice, "01-sign-in");

  await alice.getByRole("link", { name: "Register" }).click();
  await alice.getByRole("heading", { name: "Register" }).waitFor();
  // The rules come from GET /auth/password-policy.
  await alice.getByRole("list", { name: "Password rules" }).waitFor();

  // A weak password: the API's message, with each broken rule listed.
  await alice.getByLabel("User name").fill(ALICE.username);
  await alice.getByLabel("Password", { exact: true }).fill("short");
  await alice.getByLabel("Repeat the password").fill("short");
  await alice.getByRole("button", { name: "Register" }).click();
  const refusal = alice.getByRole("alert");
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /password is not accepted/i);
  assert.ok((await refusal.getByRole("listitem").count()) >= 1, "each broken rule is listed");
  await env.screenshot(alice, "02-register-refused");

  await alice.getByLabel("Password", { exact: true }).fill(ALICE.password);
  await alice.getByLabel("Repeat the password").fill(ALICE.password);
  await alice.getByRole("button", { name: "Register" }).click();
  await alice.getByRole("heading", { name: "Awaiting approval" }).waitFor();
  await env.screenshot(alice, "03-register-awaiting-approval");

  // Not yet approved: the API's words.
  await alice.getByRole("link", { name: "Back to sign in" }).click();
  await alice.getByLabel("User name").fill(ALICE.username);
  await alice.getByLabel("Password").fill(ALICE.password);
  await alice.getByRole("button", { name: "Sign in" }).click();
  await alice.getByText(/your account awaits approval by an admin/i).waitFor();

  // The admin approves.
  const admin = await env.newPage("root");
  pages.admin = admin;
  await signIn(admin, ADMIN.username, ADMIN.password);
  await admin.getByRole("link", { name: "Admin" }).click();
  await admin.getByRole("heading", { name: "Administration" }).waitFor();
  await admin.getByRole("button", { name: `Approve ${ALICE.username}` }).waitFor();
  await env.screenshot(admin, "04-admin-approvals");
  await admin.getByRole("button", { name: `Approve ${ALICE.username}` }).click();
  await admin.getByText("Nobody is waiting for approval.").waitFor();

  // Now she can sign in.
  await alice.getByRole("button", { name: "Sign in" }).click();
  await alice.getByRole("navigation", { name: "Main" }).waitFor();
  assert.equal(new URL(alice.url()).pathname, "/chat");
  await alice.getByRole("heading", { name: "New conversation" }).waitFor();
});

test("she uploads a document and sees it become ready", { timeout: 120_000 }, async () => {
  const alice = pages.alice;
  assert.ok(alice, "the previous test signed alice in");
  await alice.getByRole("link", { name: "Documents", exact: true }).click();
  await alice.getByRole("heading", { name: "Documents" }).waitFor();
  await alice.getByLabel("Name").fill("Handbook");
  await alice.getByRole("button", { name: "Create collection" }).click();
  await alice.getByRole("heading", { name: "Handbook" }).waitFor();
  assert.match(new URL(alice.url()).pathname, /^\/collections\/.+/);

  await alice.getByLabel("Files to upload").setInputFiles({
    name: "harbour-handbook.txt",
    mimeType: "text/plain",
    buffer: Buffer.from(HANDBOOK),
  });
  // Choosing files starts their upload: there is no separate button.
  // Status is polled until ingestion ends.
  const row = alice.getByTestId("document-row").filter({ hasText: "harbour-handbook.txt" });
  await row.waitFor();
  await alice.locator('[data-testid="document-row"][data-status="ready"]').waitFor({ timeout: 60_000 });
  assert.ok(env.llm.state.embedCalls > 0, "the document was embedded by the model server");
  const ready = await row.innerText();
  assert.match(ready, /ready/);

  // A document whose ingestion fails shows why, and can be retried.
  env.llm.state.embedFailStatus = 400;
  try {
    await alice.getByLabel("Files to upload").setInputFiles({
      name: "tide-table.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("Tide table\n\nHigh water is at six in the morning and at half past six at night.\n"),
    });
    const failed = alice.locator('[data-testid="document-row"][data-status="failed"]').filter({ hasText: "tide-table.txt" });
    await failed.waitFor({ timeout: 60_000 });
    assert.match(await failed.innerText(), /embedding failed/);
    await env.screenshot(alice, "05-documents-failed");
  } finally {
    env.llm.state.embedFailStatus = null;
  }
  await alice.getByRole("button", { name: "Retry tide-table.txt" }).click();
  await alice
    .locator('[data-testid="document-row"][data-status="ready"]')
    .filter({ hasText: "tide-table.txt" })
    .waitFor({ timeout: 60_000 });
  // Embeddings are configured: no "lexical only" notice.
  assert.equal(await alice.getByText("Lexical only").count(), 0);
  await env.screenshot(alice, "06-documents");
});

test("she asks a question, the answer streams in, and a citation opens its passage", { timeout: 120_000 }, async () => {
  const alice = pages.alice;
  assert.ok(alice, "the previous tests signed alice in and uploaded a document");
  await alice.getByRole("link", { name: "Chat" }).click();
  await alice.getByRole("heading", { name: "New conversation" }).waitFor();

  // Hold the answer after its first tokens, to see it arrive in pieces.
  const release = env.llm.holdAfter(3);
  let released = false;
  try {
    await alice.getByLabel("Your question").fill("When do the harbour gates open?");
    await alice.getByLabel("Your question").press("Enter");
    const answer = alice.getByRole("article", { name: "Answer" });
    await answer.getByText(/According to the/).waitFor();
    const partial = await answer.innerText();
    assert.doesNotMatch(partial, /dusk/, "only the first tokens have arrived");
    assert.match(new URL(alice.url()).pathname, /^\/chat\/.+/, "the conversation was created");
    await env.screenshot(alice, "07-chat-streaming");
    release();
    released = true;
  } finally {
    if (!released) release();
  }

  const answer = alice.getByRole("article", { name: "Answer" });
  await answer.getByText(/close at dusk/).waitFor();
  const chip = answer.getByRole("button", { name: /^Source \d+: harbour-handbook\.txt$/ }).first();
  await chip.waitFor();
  // The stored message replaced the streamed one: the conversation was titled after the question.
  await alice.getByRole("link", { name: /When do the harbour gates open/ }).waitFor();
  assert.equal(env.llm.state.chatCalls, 1);
  await env.screenshot(alice, "08-chat-answer");

  const chipName = await chip.getAttribute("aria-label");
  await chip.click();
  const dialog = alice.getByRole("dialog", { name: chipName ?? "" });
  await dialog.waitFor();
  const passage = dialog.getByTestId("passage");
  await passage.waitFor();
  // The passage, marked, in the text around it.
  const marked = await passage.locator("mark").innerText();
  assert.match(marked, /gates open at dawn/);
  const whole = await passage.innerText();
  assert.ok(whole.length > marked.length, "the passage is shown with its surroundings");
  await env.screenshot(alice, "09-citation-passage");
  await alice.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });

  // Reloading shows the stored conversation, citations included.
  await alice.reload();
  await alice.getByRole("article", { name: "Answer" }).getByText(/close at dusk/).waitFor();
  await alice.getByRole("button", { name: /^Source \d+: harbour-handbook\.txt$/ }).first().waitFor();
});

test("the account page creates an API token, shows it once, and revokes it", { timeout: 60_000 }, async () => {
  const alice = pages.alice;
  assert.ok(alice);
  await alice.getByRole("link", { name: "Account" }).click();
  await alice.getByRole("heading", { name: "Your account" }).waitFor();
  await alice.getByLabel("Token name").fill("e2e script");
  await alice.getByRole("button", { name: "Create token" }).click();
  const secret = await alice.getByTestId("new-token").innerText();
  assert.ok(secret.length > 20, "the secret is shown");
  await env.screenshot(alice, "10-account");
  await alice.getByRole("button", { name: "Revoke e2e script" }).click();
  await alice.getByTestId("token-row").filter({ hasText: "e2e script" }).getByText("revoked").waitFor();
});

test("an admin denies a registration, and the audit log shows it", { timeout: 90_000 }, async () => {
  const registered = await fetch(`${env.baseURL}/api/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(MALLORY),
  });
  assert.equal(registered.status, 202);

  const admin = pages.admin;
  assert.ok(admin, "the first test signed the admin in");
  await admin.goto("/admin/approvals");
  await admin.getByRole("button", { name: `Deny ${MALLORY.username}` }).click();
  await admin.getByText("Nobody is waiting for approval.").waitFor();

  await admin.getByRole("link", { name: "Users" }).click();
  const row = admin.getByTestId("user-row").filter({ hasText: MALLORY.username });
  await row.getByText("denied").waitFor();
  await env.screenshot(admin, "11-admin-users");

  await admin.getByRole("link", { name: "Audit log" }).click();
  await admin.getByTestId("audit-row").first().waitFor();
  await admin.getByLabel("Event").selectOption("user.denied");
  await admin.getByRole("button", { name: "Filter" }).click();
  const denied = admin.getByTestId("audit-row").filter({ hasText: MALLORY.username });
  await denied.waitFor();
  assert.match(await denied.innerText(), /user\.denied/);
  assert.match(await denied.innerText(), new RegExp(ADMIN.username));
  assert.equal(await admin.getByTestId("audit-row").count(), 1, "the filter leaves only the denial");
  await env.screenshot(admin, "12-admin-audit");

  // Mallory is told, in the API's words.
  const mallory = await env.newPage("mallory");
  await mallory.goto("/sign-in");
  await mallory.getByLabel("User name").fill(MALLORY.username);
  await mallory.getByLabel("Password").fill(MALLORY.password);
  await mallory.getByRole("button", { name: "Sign in" }).click();
  await mallory.getByText(/an admin declined this account/i).waitFor();
});

test("the pages work on a phone in dark mode", { timeout: 60_000 }, async () => {
  const alice = pages.alice;
  assert.ok(alice);
  const state = await alice.context().storageState();
  const phone = await env.newPage("alice-phone", {
    storageState: state,
    viewport: { width: 390, height: 844 },
    colorScheme: "dark",
    isMobile: true,
    hasTouch: true,
  });
  await phone.goto("/chat");
  // On a phone the conversation list is a drawer.
  await phone.getByRole("button", { name: /Conversations/ }).click();
  await phone.getByRole("link", { name: /When do the harbour gates open/ }).click();
  await phone.getByRole("article", { name: "Answer" }).getByText(/close at dusk/).waitFor();
  const bodyColour = (page) => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const light = await bodyColour(alice);
  const dark = await bodyColour(phone);
  assert.notEqual(dark, light, "the dark theme follows the system");
  await env.screenshot(phone, "13-chat-phone-dark");
  await phone.goto("/documents");
  await phone.getByRole("heading", { name: "Documents" }).waitFor();
  await env.screenshot(phone, "14-documents-phone-dark");
  // The theme menu overrides the system.
  await phone.getByLabel("Theme").selectOption("light");
  assert.equal(await phone.evaluate(() => document.documentElement.dataset.theme), "light");
  assert.equal(await bodyColour(phone), light, "the theme menu overrides the system");
});

test("the console watch catches errors, and the CSP blocks inline script", { timeout: 30_000 }, async () => {
  const page = await env.newPage("watch-check");
  await page.goto("/sign-in");
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await page.evaluate(() => {
    const script = document.createElement("script");
    script.textContent = "window.__inlineRan = true";
    document.head.append(script);
    console.error("a deliberate error");
  });
  let seen = [];
  for (let i = 0; i < 40 && seen.length < 2; i += 1) {
    await new Promise((r) => setTimeout(r, 50));
    seen = [...env.problems];
  }
  env.problems.splice(0);
  assert.ok(seen.some((p) => p.includes("a deliberate error")), seen.join("\n"));
  assert.ok(seen.some((p) => /Content Security Policy/i.test(p)), seen.join("\n"));
  assert.equal(await page.evaluate(() => window.__inlineRan), undefined, "the inline script did not run");
});
