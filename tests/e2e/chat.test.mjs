// Browser tests of the chat page, each at a desktop in light mode and a 390×844 phone in dark
// mode, each ending with the page's checks (no horizontal overflow, no serious or critical axe
// violation): `cargo xtask e2e --only chat`.
//
// One server for the file. The admin asks the questions; the first tests run before any
// document exists (the empty states), a setup test then uploads two collections.

import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { ADMIN, LAYOUTS, apiOf, checkPage, eachLayout, setUp, signIn } from "./harness.mjs";

const HANDBOOK = [
  "Harbour handbook",
  "",
  "Opening hours. The harbour gates open at dawn and close at dusk every day of the year. " +
    "Visiting boats report to the harbour master within one hour of arrival.",
  "",
  "Fees. Mooring fees are paid weekly at the office beside the lighthouse. " +
    "Fuel is sold on the north pier between eight and noon.",
].join("\n");
const MENU = "Canteen menu\n\nThe canteen serves fish soup on Fridays and lentil stew on Mondays.";
const TIDES = "Tide table\n\nHigh water at the harbour mouth is at six in the morning and at half past six at night.";

let env;
/** The admin's signed-in cookies, for each test's fresh page. */
let signedIn;

before(async () => {
  env = await setUp();
  const page = await env.newPage("sign-in");
  await signIn(page, ADMIN.username, ADMIN.password);
  signedIn = await page.context().storageState();
  await page.context().close();
});

after(async () => {
  await env?.tearDown();
});

afterEach(() => {
  const problems = env?.problems.splice(0) ?? [];
  assert.deepEqual(problems, [], `pages logged errors:\n${problems.join("\n")}`);
});

/** A page of the signed-in admin in `layout`, with clipboard access. */
async function adminPage(layout, label, { state = signedIn } = {}) {
  const page = await env.newPage(`${label}-${layout}`, { layout, storageState: state });
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
  return page;
}

const viewport = (layout) => LAYOUTS[layout].viewport;
const isPhone = (layout) => viewport(layout).width < 768;

async function ask(page, question) {
  const answered = page.getByRole("group", { name: "Answer actions" });
  const before = await answered.count();
  await page.getByLabel("Your question").fill(question);
  await page.getByRole("button", { name: "Send", exact: true }).click();
  // The stored answer has its actions: one more than before.
  await answered.nth(before).waitFor();
  await page.getByRole("button", { name: "Send", exact: true }).waitFor();
}

/** Forgets console errors matching `pattern` (a failure the test causes on purpose). */
function expectProblems(pattern) {
  const keep = env.problems.filter((p) => !pattern.test(p));
  env.problems.splice(0, env.problems.length, ...keep);
}

// --- Item 10: empty states, before any document exists -------------------------------------

eachLayout("with no documents, the chat says to upload and links to Documents", async (layout) => {
  const page = await adminPage(layout, "empty");
  await page.goto("/chat");
  const empty = page.getByTestId("chat-empty");
  await empty.getByText(/You have no documents yet/).waitFor();
  assert.equal(await empty.getByRole("link", { name: /Documents page/ }).getAttribute("href"), "/documents");
  await ask(page, "When do the gates open?");
  const hint = page.getByRole("status").filter({ hasText: "you have no documents yet" });
  await hint.waitFor();
  assert.equal(await hint.getByRole("link", { name: /Documents page/ }).getAttribute("href"), "/documents");
  await checkPage(page, `empty-${layout}`);
  await page.context().close();
});

test("setup: two collections with a document each", { timeout: 60_000 }, async () => {
  const page = await env.newPage("setup", { storageState: signedIn });
  const api = await apiOf(page);
  for (const [name, file, text] of [
    ["Handbook", "harbour-handbook.txt", HANDBOOK],
    ["Canteen", "menu.txt", MENU],
  ]) {
    const c = await api.post("/collections", { name });
    await api.waitReady((await api.upload(c.id, file, text)).id);
  }
  await page.context().close();
});

// --- Item 2: the scope of a conversation ------------------------------------------------------

eachLayout("a conversation searches the collections chosen for it, and keeps them", async (layout) => {
  const page = await adminPage(layout, "scope");
  await page.goto("/chat");
  const scope = page.getByTestId("scope");
  assert.match(await scope.innerText(), /Searching all your documents/);
  await page.getByRole("button", { name: "Choose what to search" }).click();
  await page.getByRole("checkbox", { name: /Canteen/ }).check();
  await page.getByRole("button", { name: "Done" }).click();
  assert.match(await scope.innerText(), /Searching Canteen/);
  await ask(page, "When do the harbour gates open, and what soup is served?");
  const sources = page.getByRole("article", { name: "Answer" }).getByRole("list");
  assert.match(await sources.innerText(), /menu\.txt/);
  assert.doesNotMatch(await sources.innerText(), /harbour-handbook/, "the handbook is out of scope");
  await page.reload();
  await page.getByRole("article", { name: "Answer" }).waitFor();
  assert.match(await page.getByTestId("scope").innerText(), /Searching Canteen/, "the scope is kept");

  // Narrower: one document, even of another collection.
  await page.getByRole("button", { name: "Choose what to search" }).click();
  await page.getByRole("checkbox", { name: "harbour-handbook.txt" }).check();
  await checkPage(page, `scope-picker-${layout}`);
  await page.getByRole("button", { name: "Done" }).click();
  assert.match(await page.getByTestId("scope").innerText(), /Searching harbour-handbook\.txt/);
  await ask(page, "What soup is served on Fridays, and when do the gates open?");
  const narrowed = page.getByRole("article", { name: "Answer" }).last().getByRole("list");
  assert.match(await narrowed.innerText(), /harbour-handbook/);
  assert.doesNotMatch(await narrowed.innerText(), /menu\.txt/, "only the chosen document");
  await checkPage(page, `scope-${layout}`);
  await env.screenshot(page, `chat-scope-${layout}`);
  await page.context().close();
});

// --- Item 3: the conversation list is a drawer on phones -------------------------------------

eachLayout("the conversation list is a column on desktops and a drawer on phones", async (layout) => {
  const page = await adminPage(layout, "drawer");
  await page.goto("/chat");
  const list = page.getByRole("navigation", { name: "Conversation list" });
  const opener = page.getByRole("button", { name: /Conversations/ });
  if (isPhone(layout)) {
    assert.equal(await list.isVisible(), false, "the list waits in the drawer");
    await opener.click();
    await list.waitFor();
    await checkPage(page, `drawer-open-${layout}`);
    await env.screenshot(page, `chat-drawer-open-${layout}`);
    await page.keyboard.press("Escape");
    await list.waitFor({ state: "hidden" });
    assert.equal(await page.evaluate(() => document.activeElement?.id), "conversation-drawer-opener", "focus returns to the opener");
    await opener.click();
  } else {
    assert.equal(await opener.isVisible(), false, "no drawer button on a desktop");
    await list.waitFor();
  }
  await list.getByRole("link").first().click();
  await page.getByRole("article", { name: "Answer" }).first().waitFor();
  if (isPhone(layout)) assert.equal(await list.isVisible(), false, "choosing closes the drawer");
  for (const name of ["Send", "Rename", "Delete"]) {
    const box = await page.getByRole("button", { name, exact: true }).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= viewport(layout).width, `${name} is on screen`);
  }
  await checkPage(page, `drawer-${layout}`);
  await page.context().close();
});

// --- Item 5: a question survives failures and an expired session -----------------------------

eachLayout("a question that could not be sent stays in the box, with Retry", async (layout) => {
  const page = await adminPage(layout, "retry");
  await page.goto("/chat");
  await page.route("**/api/v1/conversations/*/messages", (route) => route.abort("internetdisconnected"));
  await page.getByLabel("Your question").fill("What is sold on the north pier?");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  const failed = page.getByTestId("ask-failed");
  await failed.getByText(/cannot reach the Berth server/i).waitFor();
  assert.equal(await page.getByLabel("Your question").inputValue(), "What is sold on the north pier?");
  await checkPage(page, `retry-failed-${layout}`);
  await env.screenshot(page, `chat-retry-${layout}`);
  expectProblems(/ERR_INTERNET_DISCONNECTED/);
  await page.unroute("**/api/v1/conversations/*/messages");
  await failed.getByRole("button", { name: "Retry" }).click();
  await page.getByRole("group", { name: "Answer actions" }).last().waitFor();
  assert.match(await page.getByRole("article", { name: "Answer" }).last().innerText(), /Fuel is sold/);
  assert.equal(await page.getByLabel("Your question").inputValue(), "", "answered: the draft is gone");
  await page.context().close();
});

eachLayout("when the session expires, sign-in says so and the question comes back", async (layout) => {
  // A session of its own, so ending it leaves the other tests signed in.
  const first = await env.newPage(`expiry-sign-in-${layout}`);
  await signIn(first, ADMIN.username, ADMIN.password);
  const state = await first.context().storageState();
  await first.context().close();
  const page = await adminPage(layout, "expiry", { state });
  const conv = await (await apiOf(page)).post("/conversations", {});
  await page.goto(`/chat/${conv.id}`);
  await page.getByRole("heading", { name: "New conversation" }).waitFor();
  await page.getByLabel("Your question").fill("When are mooring fees paid?");
  await page.context().clearCookies();
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await page.getByText("Your session expired — sign in again; your question is kept.").waitFor();
  await checkPage(page, `expiry-sign-in-${layout}`);
  await env.screenshot(page, `chat-session-expired-${layout}`);
  await page.getByLabel("User name").fill(ADMIN.username);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`**/chat/${conv.id}`);
  await page.getByLabel("Your question").waitFor();
  assert.equal(await page.getByLabel("Your question").inputValue(), "When are mooring fees paid?");
  await checkPage(page, `expiry-back-${layout}`);
  await page.context().close();
});

// --- Item 6 and citations: Markdown, safely, with sources that open in the document ----------

const MARKDOWN = [
  "#### Opening hours",
  "",
  "The gates open at **dawn** [1].",
  "",
  "```sh",
  "echo gates-open",
  "```",
  "",
  '<img src="x" onerror="window.__xss = 1"><script>window.__xss = 2</script>',
  "",
  "- [a safe link](https://example.com/harbour)",
  "- [a bad link](javascript:window.__xss=3)",
].join("\n");

eachLayout("answers render Markdown safely, code has Copy, citations open in the document", async (layout) => {
  const page = await adminPage(layout, "markdown");
  await page.goto("/chat");
  env.llm.state.reply = MARKDOWN;
  try {
    await ask(page, "When do the harbour gates open?");
  } finally {
    env.llm.state.reply = null;
  }
  const answer = page.getByRole("article", { name: "Answer" }).last();
  await answer.getByRole("heading", { name: "Opening hours" }).waitFor();
  const text = await answer.innerText();
  assert.doesNotMatch(text, /####|```|\*\*/, "no raw Markdown marks");
  assert.equal(await answer.locator("strong", { hasText: "dawn" }).count(), 1);
  assert.equal(await answer.locator("img, script").count(), 0, "no HTML from the model");
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  const hrefs = await answer.locator("a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  assert.deepEqual(hrefs, ["https://example.com/harbour"]);
  await answer.getByRole("button", { name: "Copy code (sh)" }).click();
  await answer.getByRole("status").filter({ hasText: "Copied" }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "echo gates-open");

  const chip = answer.getByRole("button", { name: /^Source 1: / }).first();
  await chip.click();
  const dialog = page.getByRole("dialog");
  const open = dialog.getByRole("link", { name: "Open in document" });
  await open.waitFor();
  assert.match(await open.getAttribute("href"), /^\/documents\/[\w-]+\?passage=\d+$/);
  await checkPage(page, `markdown-dialog-${layout}`);
  await page.keyboard.press("Escape");
  await checkPage(page, `markdown-${layout}`);
  await env.screenshot(page, `chat-markdown-${layout}`);
  await page.context().close();
});

// --- Item 9: no empty conversations, rename, search ------------------------------------------

eachLayout("conversations are made by a first question, renamed and searched", async (layout) => {
  const page = await adminPage(layout, "rename");
  const before = (await (await apiOf(page)).get("/conversations")).length;
  await page.goto("/chat");
  const list = page.getByRole("navigation", { name: "Conversation list" });
  const openList = async () => {
    if (isPhone(layout)) await page.getByRole("button", { name: /Conversations/ }).click();
    await list.waitFor();
  };
  for (let i = 0; i < 2; i += 1) {
    await openList();
    await page.getByRole("button", { name: "New conversation" }).click();
  }
  await page.getByRole("heading", { name: "New conversation" }).waitFor();
  assert.equal((await (await apiOf(page)).get("/conversations")).length, before, "nothing created yet");
  await ask(page, "What is served on Fridays?");
  assert.equal((await (await apiOf(page)).get("/conversations")).length, before + 1);

  const title = `Canteen days ${layout}`;
  await page.getByRole("button", { name: "Rename" }).click();
  await page.getByLabel("Conversation title").fill(title);
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: title }).waitFor();

  await openList();
  await page.getByLabel("Search conversations").fill(`days ${layout}`);
  await list.getByRole("link", { name: title }).waitFor();
  assert.equal(await list.getByRole("link").count(), 1, "only the matching conversation");
  await page.getByLabel("Search conversations").fill("no such title");
  await list.getByText("No conversation title contains").waitFor();
  await checkPage(page, `rename-${layout}`);
  await page.context().close();
});

// --- Item 11: human words for a missing conversation, and for extractive answers -------------

eachLayout("a missing conversation is said in plain words, and an extractive answer explains once", async (layout) => {
  const page = await adminPage(layout, "missing");
  await page.goto("/chat/00000000-0000-4000-8000-000000000000");
  await page.getByText("This conversation no longer exists").waitFor();
  assert.equal(await page.getByText(/of yours|0000/).count(), 0, "no internal wording or id");
  assert.equal(await page.getByRole("button", { name: "Delete" }).count(), 0);
  await checkPage(page, `missing-${layout}`);
  expectProblems(/status of 404/);
  await page.getByRole("link", { name: "Start a new conversation" }).click();
  await page.getByRole("heading", { name: "New conversation" }).waitFor();

  // An answer made without a language model, as the server stores it.
  const conv = await (await apiOf(page)).post("/conversations", {});
  const explained = "No LLM is configured, so this is an extractive answer: the sentences of your documents that best match your question.";
  await page.route(`**/api/v1/conversations/${conv.id}`, async (route) => {
    const real = await (await route.fetch()).json();
    const at = new Date().toISOString();
    real.messages = [
      { id: 1, role: "user", content: "When do the gates open?", mode: null, citations: [], created_at: at },
      { id: 2, role: "assistant", content: `${explained}\n\nThe gates open at dawn.`, mode: "extractive", citations: [], created_at: at },
    ];
    await route.fulfill({ json: real });
  });
  await page.goto(`/chat/${conv.id}`);
  const answer = page.getByRole("article", { name: "Answer" });
  await answer.getByText("Extractive", { exact: true }).waitFor();
  const said = (await answer.innerText()).match(/(No LLM|No language model) is configured/g) ?? [];
  assert.equal(said.length, 1, "the explanation shows once");
  await checkPage(page, `extractive-${layout}`);
  await page.context().close();
});

// --- Item 12: the box is docked; a streaming answer is read from its start -------------------

eachLayout("the question box is docked, and a long answer is shown from its first line", async (layout) => {
  const page = await adminPage(layout, "dock");
  await page.goto("/chat");
  const form = page.getByRole("form", { name: "Ask a question" });
  const docked = async () => {
    const box = await form.boundingBox();
    return Math.abs(box.y + box.height - viewport(layout).height) <= 2;
  };
  assert.ok(await docked(), "an empty conversation's box is at the bottom");
  const long = ["The gates open at dawn [1].", ...Array.from({ length: 80 }, (_, i) => `Line ${i + 1} of the answer.`)].join("\n\n");
  env.llm.state.reply = long;
  env.llm.state.tokenDelay = 2;
  try {
    await ask(page, "Tell me everything about the harbour gates.");
  } finally {
    env.llm.state.reply = null;
    env.llm.state.tokenDelay = 15;
  }
  const first = page.getByRole("article", { name: "Answer" }).last().getByText("The gates open at dawn");
  const top = await first.evaluate((el) => el.getBoundingClientRect().top);
  assert.ok(top >= 0 && top < viewport(layout).height / 2, `the answer's first line is in view (top ${top})`);
  const atEnd = await page.evaluate(() => window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 4);
  assert.equal(atEnd, false, "the page did not jump to the end of the answer");
  assert.ok(await docked(), "the box stays docked under a long conversation");
  await checkPage(page, `dock-${layout}`);
  await page.context().close();
});

// --- Answer actions and feedback --------------------------------------------------------------

eachLayout("an answer is copied, regenerated, and its question edited and resent", async (layout) => {
  const page = await adminPage(layout, "actions");
  await page.goto("/chat");
  await ask(page, "Where is fuel sold?");
  const answers = page.getByRole("article", { name: "Answer" });
  const actions = answers.last().getByRole("group", { name: "Answer actions" });
  await actions.getByRole("button", { name: "Copy answer" }).click();
  await actions.getByText("Copied").waitFor();
  assert.match(await page.evaluate(() => navigator.clipboard.readText()), /Fuel is sold on the north pier/);

  const calls = env.llm.state.chatCalls;
  await actions.getByRole("button", { name: "Regenerate" }).click();
  await answers.nth(1).getByRole("group", { name: "Answer actions" }).waitFor();
  assert.equal(env.llm.state.chatCalls, calls + 1);

  await page.getByRole("button", { name: "Edit and resend" }).click();
  const box = page.getByLabel("Your question");
  assert.equal(await box.inputValue(), "Where is fuel sold?");
  await box.fill("When is fuel sold?");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await answers.nth(2).getByRole("group", { name: "Answer actions" }).waitFor();
  await page.getByText("When is fuel sold?").waitFor();
  await checkPage(page, `actions-${layout}`);
  await page.context().close();
});

eachLayout("thumbs up or down is stored with the answer and can be changed", async (layout) => {
  const page = await adminPage(layout, "feedback");
  await page.goto("/chat");
  await ask(page, "When do the gates close?");
  const url = page.url();
  const good = () => page.getByRole("button", { name: "Good answer" });
  const bad = () => page.getByRole("button", { name: "Bad answer" });
  const saved = () => page.waitForResponse((r) => r.url().includes("/feedback") && r.status() === 204);
  await Promise.all([saved(), good().click()]);
  await page.getByText("Thanks for the feedback.").waitFor();
  await page.goto(url);
  await page.getByRole("group", { name: "Answer actions" }).waitFor();
  assert.equal(await good().getAttribute("aria-pressed"), "true", "the vote is stored");
  await Promise.all([saved(), bad().click()]);
  await page.goto(url);
  await page.getByRole("group", { name: "Answer actions" }).waitFor();
  assert.equal(await bad().getAttribute("aria-pressed"), "true", "the vote changed");
  assert.equal(await good().getAttribute("aria-pressed"), "false");
  await checkPage(page, `feedback-${layout}`);
  await env.screenshot(page, `chat-feedback-${layout}`);
  await page.context().close();
});

// --- Dropping a file on the chat ----------------------------------------------------------

eachLayout("a file dropped on the chat is uploaded, processed, and can be asked about", async (layout) => {
  const page = await adminPage(layout, "drop");
  await page.goto("/chat");
  await page.getByTestId("chat-empty").waitFor();
  const name = `tides-${layout}.txt`;
  await page.evaluate(
    ({ name, text }) => {
      const target = document.querySelector('section[aria-label="Conversation"]');
      const data = new DataTransfer();
      data.items.add(new File([text], name, { type: "text/plain" }));
      for (const type of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
      }
    },
    { name, text: `${TIDES}\n\nCopied for the ${layout} test.` },
  );
  // Two collections and no scope: the page asks which.
  const dialog = page.getByRole("dialog", { name: "Add the file to which collection?" });
  await dialog.getByLabel("Collection").selectOption({ label: "Handbook" });
  await checkPage(page, `drop-choose-${layout}`);
  await env.screenshot(page, `chat-drop-choose-${layout}`);
  await dialog.getByRole("button", { name: `Add ${name}` }).click();
  const upload = page.getByTestId("drop-upload");
  await upload.getByText(/Uploading|Processing/).first().waitFor();
  await page.locator('[data-testid="drop-upload"][data-state="ready"]').waitFor({ timeout: 30_000 });
  assert.match(await upload.innerText(), new RegExp(`${name} is ready: ask about it`));
  await checkPage(page, `drop-ready-${layout}`);
  await env.screenshot(page, `chat-drop-ready-${layout}`);
  await ask(page, "When is high water at the harbour mouth?");
  const sources = page.getByRole("article", { name: "Answer" }).last().getByRole("list");
  assert.match(await sources.innerText(), /tides-/);
  await page.context().close();
});
