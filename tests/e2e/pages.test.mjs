// Every page in every layout (desktop and a 390×844 phone, light and dark): nothing wider than
// the window, no serious or critical accessibility violation (axe-core). And the screenshots of
// the main pages: test-artifacts/screenshots/ always; docs/screenshots/ with
// `cargo xtask e2e --screenshots` (BERTH_E2E_DOCS_SCREENSHOTS), which the README shows.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, test } from "node:test";
import { ADMIN, LAYOUTS, apiOf, checkPage, setUp, signIn } from "./harness.mjs";

const ALICE = { username: "alice", password: "Lighthouse-Keeper-2026!" };

const HANDBOOK = [
  "# Harbour handbook",
  "",
  "## Opening hours",
  "The harbour gates open at dawn and close at dusk every day of the year. " +
    "Visiting boats report to the harbour master within one hour of arrival.",
  "",
  "## Fees",
  "Mooring fees are paid weekly at the office beside the lighthouse. Fuel is sold on the north pier.",
].join("\n");

/** The screenshots the README shows: the main pages, at both sizes. */
const DOCS_SCREENSHOTS = process.env.BERTH_E2E_DOCS_SCREENSHOTS;
const SCREENSHOT_LAYOUTS = { "desktop-light": "desktop", "phone-dark": "phone" };

let env;
/** Signed-in browser states and the ids the pages show. */
const state = {};

before(async () => {
  env = await setUp();
  const admin = await env.newPage("admin-setup");
  await signIn(admin, ADMIN.username, ADMIN.password);
  const asAdmin = await apiOf(admin);

  // Alice registers (no session needed), the admin approves her, she signs in.
  const anonymous = await env.browser.newContext({ baseURL: env.baseURL });
  const registered = await anonymous.request.post("/api/v1/auth/register", { data: ALICE });
  assert.ok(registered.ok(), await registered.text());
  await anonymous.close();
  const users = await asAdmin.get("/admin/users");
  const pending = users.find((u) => u.username === ALICE.username);
  await asAdmin.post(`/admin/users/${pending.id}/approve`);

  const alice = await env.newPage("alice-setup");
  await signIn(alice, ALICE.username, ALICE.password);
  const asAlice = await apiOf(alice);
  const collection = await asAlice.post("/collections", { name: "Handbook", shared: false });
  const document = await asAlice.upload(collection.id, "harbour-handbook.md", HANDBOOK);
  await asAlice.waitReady(document.id);
  const conversation = await asAlice.post("/conversations", {});
  await asAlice.ask(conversation.id, "When do the harbour gates open?");

  state.admin = await admin.context().storageState();
  state.alice = await alice.context().storageState();
  state.collection = collection.id;
  state.conversation = conversation.id;
  state.document = document.id;
  state.passage = (await asAlice.get(`/documents/${document.id}/text`)).passages.at(-1).id;
});

after(async () => {
  await env?.tearDown();
});

afterEach(() => {
  const problems = env?.problems.splice(0) ?? [];
  assert.deepEqual(problems, [], `pages logged errors:\n${problems.join("\n")}`);
});

/** Each page: who sees it, where, and what shows it has rendered. */
function pagesToVisit() {
  return [
    { name: "sign-in", who: null, path: "/sign-in", ready: { role: "heading", name: "Sign in" } },
    { name: "register", who: null, path: "/register", ready: { role: "heading", name: "Register" } },
    { name: "chat-new", who: "alice", path: "/chat", ready: { role: "textbox", name: "Your question" } },
    {
      name: "chat",
      who: "alice",
      path: `/chat/${state.conversation}`,
      ready: { role: "article", name: "Answer" },
      screenshot: true,
    },
    { name: "documents", who: "alice", path: "/documents", ready: { role: "heading", name: "Documents" } },
    {
      name: "collection",
      who: "alice",
      path: `/collections/${state.collection}`,
      ready: { role: "heading", name: "Handbook" },
      screenshot: true,
    },
    {
      name: "document",
      who: "alice",
      path: `/documents/${state.document}?passage=${state.passage}`,
      ready: { role: "article", name: "Document text" },
    },
    { name: "account", who: "alice", path: "/account", ready: { role: "heading", name: "API tokens" } },
    { name: "admin", who: "admin", path: "/admin", ready: { role: "heading", name: "Administration" }, screenshot: true },
    { name: "admin-users", who: "admin", path: "/admin/users", ready: { role: "cell", name: "alice" } },
    { name: "admin-settings", who: "admin", path: "/admin/settings", ready: { role: "button", name: "Save settings" } },
  ];
}

for (const layout of Object.keys(LAYOUTS)) {
  test(`every page fits the window and passes axe-core [${layout}]`, { timeout: 120_000 }, async () => {
    for (const visit of pagesToVisit()) {
      const page = await env.newPage(`${visit.name}-${layout}`, {
        layout,
        ...(visit.who ? { storageState: state[visit.who] } : {}),
      });
      await page.goto(visit.path);
      await page.getByRole(visit.ready.role, { name: visit.ready.name }).first().waitFor();
      await page.waitForLoadState("networkidle");
      await checkPage(page, `${visit.name} [${layout}]`);
      const size = SCREENSHOT_LAYOUTS[layout];
      if (size && (visit.screenshot || visit.name === "sign-in")) {
        await env.screenshot(page, `page-${visit.name}-${layout}`);
        if (DOCS_SCREENSHOTS) {
          mkdirSync(DOCS_SCREENSHOTS, { recursive: true });
          // The viewport only: what a person sees on opening the page.
          await page.screenshot({ path: join(DOCS_SCREENSHOTS, `${visit.name}-${size}.png`) });
        }
      }
      await page.context().close();
    }
  });
}

test("the page checks catch a page too wide for a phone and an unlabelled control", async () => {
  const page = await env.newPage("check-the-checks", { layout: "phone-light" });
  await page.goto("/sign-in");
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await page.evaluate(() => {
    const wide = document.createElement("div");
    wide.id = "test-box";
    wide.style.width = "460px";
    wide.textContent = "too wide";
    document.body.append(wide);
  });
  await assert.rejects(checkPage(page, "wide"), /px wide in a 390 px window; past the edge: div/);
  await page.evaluate(() => {
    const box = document.getElementById("test-box");
    box.style.width = "200px";
    box.style.overflowX = "auto";
    box.textContent = "";
    // Built through the DOM: the page's CSP refuses inline style attributes.
    const name = document.createElement("span");
    name.style.whiteSpace = "nowrap";
    name.style.display = "inline-block";
    name.textContent = "a much longer file name than the box can show.txt";
    box.append(name);
  });
  await assert.rejects(checkPage(page, "clipped"), /content cut off or scrolling sideways/);
  await page.evaluate(() => {
    document.getElementById("test-box").remove();
    document.body.append(document.createElement("input"));
  });
  await assert.rejects(checkPage(page, "unlabelled"), /critical label: Form elements must have labels/);
});
