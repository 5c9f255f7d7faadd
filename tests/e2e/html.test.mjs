// A real HTML documentation page (the rustdoc book's "Command-line arguments", mdBook output:
// sidebar, menu bar, previous/next links, scripts): a question about one of its sections is
// answered from that section's passage, cited first, and the page's navigation is in no
// passage. The real built-in embedder, no LLM (the answer is extractive), in Chromium.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, afterEach, before, test } from "node:test";
import { ADMIN, apiOf, setUp, signIn } from "./harness.mjs";

const PAGE = "rustdoc-command-line-arguments.html";
const html = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../fixtures/html", PAGE));

// The page's chrome: the menu bar's title and buttons, the chapter links, the search box.
const CHROME = [/Toggle Table of Contents/i, /Previous chapter/i, /Next chapter/i, /Print this book/i, /Search this book/i, /Change theme/i, /Press .* to navigate/i];

let env;
let page;

before(async () => {
  env = await setUp({ models: "builtin" });
  page = await env.newPage("admin");
  await signIn(page, ADMIN.username, ADMIN.password);
  const api = await apiOf(page);
  const collection = await api.post("/collections", { name: "Rust docs" });
  const document = await api.upload(collection.id, PAGE, html, "text/html");
  await api.waitReady(document.id, 120_000);
});

after(async () => {
  await env?.tearDown();
});

afterEach(() => {
  const problems = env?.problems.splice(0) ?? [];
  assert.deepEqual(problems, [], `pages logged errors:\n${problems.join("\n")}`);
});

test("a question about one section of a real HTML page cites that section first", { timeout: 180_000 }, async () => {
  // The page's chrome really is there to be dropped.
  const source = html.toString();
  for (const chrome of [/Toggle Table of Contents/, /Previous chapter/, /Print this book/]) assert.match(source, chrome);

  await page.goto("/chat");
  await page.getByLabel("Your question").fill("How can I get documentation for the items that are not public?");
  await page.getByLabel("Your question").press("Enter");
  const answer = page.getByRole("article", { name: "Answer" });
  const first = answer.getByRole("button", { name: `Source 1: ${PAGE}` }).first();
  await first.waitFor({ timeout: 60_000 });
  await first.click();
  const dialog = page.getByRole("dialog", { name: `Source 1: ${PAGE}` });
  const marked = await dialog.getByTestId("passage").locator("mark").innerText();
  assert.match(marked, /private/, `the first source is about private items: ${marked}`);
  await env.screenshot(page, "html-01-first-source");
  await page.keyboard.press("Escape");
  // And it is that section's passage: the stored citation names the section.
  const conversationId = new URL(page.url()).pathname.split("/").pop();
  const { messages } = await (await apiOf(page)).get(`/conversations/${conversationId}`);
  const citations = messages.at(-1).citations;
  assert.match(citations[0].section, /--document-private-items: Show items that are not public$/, JSON.stringify(citations[0]));
});

test("no passage of the page holds its navigation", { timeout: 60_000 }, async () => {
  const api = await apiOf(page);
  // Every passage, found by words that are in all of them or in the chrome alone.
  const passages = new Map();
  for (const q of ["rustdoc", "the", "table of contents previous next chapter print theme search", "flag"]) {
    const { results } = await api.post("/search", { query: q, k: 50 });
    for (const hit of results) passages.set(hit.chunk_id, hit);
  }
  assert.ok(passages.size >= 10, `the page is many passages: ${passages.size}`);
  for (const hit of passages.values()) {
    for (const chrome of CHROME) assert.doesNotMatch(hit.text, chrome, `passage ${hit.chunk_id} holds navigation:\n${hit.text}`);
    assert.match(hit.section, /^rustdoc-command-line-arguments/, `every passage names its page: ${hit.section}`);
  }
  // Sections are named in their passages' context.
  assert.ok(
    [...passages.values()].some((hit) => /--document-private-items/.test(hit.section)),
    "a passage's section names its heading",
  );
});
