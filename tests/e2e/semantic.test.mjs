// A question put in other words than the document's finds its passage: the real built-in
// embedder (all-MiniLM-L6-v2, from `cargo xtask fixtures`), no other service, no LLM — what
// `cargo xtask dev` gives a newcomer — in Chromium.

import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { ADMIN, setUp, signIn } from "./harness.mjs";

// Each paragraph is long enough to be a passage of its own (chunks of 300 characters), and the
// one that answers is neither the first nor the last.
const POLICY = [
  "Staff policy",
  "",
  "Travel. Employees may rent a car for trips longer than 200 kilometres. Fuel is reimbursed " +
    "monthly against receipts, and train tickets are booked through the front office. " +
    "First-class fares are refunded only when the trip is longer than four hours.",
  "",
  "Equipment. Laptops are replaced every four years; a broken screen is repaired by the service " +
    "desk within two days. Phones are replaced when the battery no longer lasts through a " +
    "working day, and chargers are kept in the cupboard by the kitchen.",
  "",
  "Holidays. Every employee has 28 days of paid vacation per year, plus public holidays. " +
    "Unused days may be carried over until March, after which they lapse. Requests go to " +
    "the team lead at least two weeks ahead, and are confirmed by e-mail.",
  "",
  "Office hours. The building opens at 8 in the morning and closes at 6 in the evening; " +
    "weekend access needs a badge from reception. Visitors sign in at the front desk and are " +
    "collected there by the person they came to see.",
].join("\n");

// Not one of its words is in the document: only the meaning can find the passage.
const QUESTION = "How much annual leave do workers get?";

let env;

before(async () => {
  env = await setUp({ models: "builtin" });
});

after(async () => {
  await env?.tearDown();
});

afterEach(() => {
  const problems = env?.problems.splice(0) ?? [];
  assert.deepEqual(problems, [], `pages logged errors:\n${problems.join("\n")}`);
});

test("a paraphrased question gets the passage that answers it, cited first", { timeout: 180_000 }, async () => {
  const words = (text) => new Set(text.toLowerCase().match(/[a-z0-9]+/g));
  const shared = [...words(QUESTION)].filter((w) => words(POLICY).has(w));
  assert.deepEqual(shared, [], "the question shares no word with the document");

  const page = await env.newPage("admin");
  await signIn(page, ADMIN.username, ADMIN.password);
  const status = await (await page.request.get("/api/v1/status")).json();
  assert.equal(status.retrieval, "hybrid", "the built-in embedder makes search semantic");

  await page.getByRole("link", { name: "Documents", exact: true }).click();
  await page.getByLabel("Name").fill("Policies");
  await page.getByRole("button", { name: "Create collection" }).click();
  await page.getByRole("heading", { name: "Policies" }).waitFor();
  await page.getByLabel("Files to upload").setInputFiles({
    name: "staff-policy.txt",
    mimeType: "text/plain",
    buffer: Buffer.from(POLICY),
  });
  // Choosing the file starts its upload.
  await page
    .locator('[data-testid="document-row"][data-status="ready"]')
    .filter({ hasText: "staff-policy.txt" })
    .waitFor({ timeout: 120_000 });

  await page.getByRole("link", { name: "Chat" }).click();
  await page.getByLabel("Your question").fill(QUESTION);
  await page.getByLabel("Your question").press("Enter");
  const answer = page.getByRole("article", { name: "Answer" });
  const first = answer.getByRole("button", { name: "Source 1: staff-policy.txt" }).first();
  await first.waitFor({ timeout: 60_000 });
  await env.screenshot(page, "semantic-01-answer");
  await first.click();
  const dialog = page.getByRole("dialog", { name: "Source 1: staff-policy.txt" });
  const marked = await dialog.getByTestId("passage").locator("mark").innerText();
  assert.match(marked, /28 days of paid vacation/, `the first source is the holidays passage: ${marked}`);
  assert.doesNotMatch(marked, /Travel|Equipment|Office hours/, `the passage is the holidays paragraph alone: ${marked}`);
  await env.screenshot(page, "semantic-02-passage");
});
