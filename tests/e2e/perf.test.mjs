// How fast Chat and Documents become usable on a first visit, and how big the bundle is:
// written to test-artifacts/e2e-perf.json and printed, for the notes (`cargo xtask e2e --only
// perf`). Measured, not asserted beyond a generous bound: timings belong to benchmarks.
//
// first contentful paint: Chromium's paint timing.
// time to interactive: when the page's data is shown and its main control usable (a predicate
// checked on every DOM change), or the end of the last long task (> 50 ms) before then if later
// — the main thread is free from that moment.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { after, afterEach, before, test } from "node:test";
import { ADMIN, apiOf, setUp, signIn } from "./harness.mjs";

const RUNS = 5;
const dist = resolve(dirname(fileURLToPath(import.meta.url)), "../../frontend/dist/assets");

let env;
const state = {};
const results = {};

before(async () => {
  env = await setUp();
  const admin = await env.newPage("admin");
  await signIn(admin, ADMIN.username, ADMIN.password);
  const api = await apiOf(admin);
  const collection = await api.post("/collections", { name: "Handbook" });
  const document = await api.upload(collection.id, "handbook.txt", "Opening hours.\n\nThe gates open at dawn.\n");
  await api.waitReady(document.id);
  const conversation = await api.post("/conversations", {});
  await api.ask(conversation.id, "When do the gates open?");
  Object.assign(state, { storage: await admin.context().storageState(), collection: collection.id, conversation: conversation.id });
});

after(async () => {
  env?.writeArtifact("e2e-perf.json", results);
  await env?.tearDown();
});

afterEach(() => {
  const problems = env?.problems.splice(0) ?? [];
  assert.deepEqual(problems, [], `pages logged errors:\n${problems.join("\n")}`);
});

/** Median first contentful paint and time to interactive of `path` over RUNS cold visits. */
async function measure(name, path, readyPredicate) {
  const runs = [];
  for (let i = 0; i < RUNS; i += 1) {
    // A fresh context each time: a cold cache, as on a first visit.
    const page = await env.newPage(`${name}-${i}`, { storageState: state.storage });
    await page.addInitScript((predicate) => {
      const perf = { longTaskEnds: [], readyAt: null };
      window.__berthPerf = perf;
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) perf.longTaskEnds.push(entry.startTime + entry.duration);
      }).observe({ type: "longtask", buffered: true });
      // eslint-disable-next-line no-new-func -- the predicate is the test's own code
      const ready = new Function(`return (${predicate})();`);
      const check = () => {
        if (perf.readyAt === null && ready()) perf.readyAt = performance.now();
      };
      new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true });
    }, readyPredicate);
    await page.goto(path);
    await page.waitForFunction(() => window.__berthPerf.readyAt !== null);
    // Long tasks right after "ready" still hold the page up.
    await page.waitForTimeout(500);
    runs.push(
      await page.evaluate(() => {
        const fcp = performance.getEntriesByName("first-contentful-paint")[0];
        const { readyAt, longTaskEnds } = window.__berthPerf;
        const lastLongTask = Math.max(0, ...longTaskEnds.filter((end) => end <= readyAt + 500));
        return {
          first_contentful_paint_ms: fcp ? Math.round(fcp.startTime) : null,
          time_to_interactive_ms: Math.round(Math.max(readyAt, lastLongTask)),
          long_tasks: longTaskEnds.length,
        };
      }),
    );
    await page.context().close();
  }
  const median = (key) => {
    const values = runs.map((r) => r[key]).filter((v) => v !== null).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)];
  };
  results[name] = {
    path,
    runs,
    median: { first_contentful_paint_ms: median("first_contentful_paint_ms"), time_to_interactive_ms: median("time_to_interactive_ms") },
  };
  console.log(`${name}: first contentful paint ${results[name].median.first_contentful_paint_ms} ms, interactive ${results[name].median.time_to_interactive_ms} ms (median of ${RUNS})`);
  return results[name].median;
}

test("the bundle's size, raw and gzipped", () => {
  const sizes = { js: { raw: 0, gzip: 0 }, css: { raw: 0, gzip: 0 } };
  for (const file of readdirSync(dist)) {
    const kind = file.endsWith(".js") ? "js" : file.endsWith(".css") ? "css" : null;
    if (!kind) continue;
    const bytes = readFileSync(join(dist, file));
    sizes[kind].raw += bytes.length;
    sizes[kind].gzip += gzipSync(bytes, { level: 9 }).length;
  }
  results.bundle_bytes = sizes;
  console.log(`bundle: JS ${(sizes.js.gzip / 1024).toFixed(1)} KiB gzipped (${(sizes.js.raw / 1024).toFixed(1)} raw), CSS ${(sizes.css.gzip / 1024).toFixed(1)} KiB gzipped`);
  assert.ok(sizes.js.raw > 0, `no JavaScript in ${dist}: build the UI first`);
});

test("chat: first paint and time to interactive", { timeout: 120_000 }, async () => {
  const id = state.conversation;
  const median = await measure(
    "chat",
    `/chat/${id}`,
    `() => [...document.querySelectorAll("textarea")].some((t) => !t.disabled) && !!document.querySelector('a[href="/chat/${id}"]') && !!document.querySelector("article")`,
  );
  assert.ok(median.time_to_interactive_ms < 10_000, "the chat page is usable within 10 s");
});

test("documents: first paint and time to interactive", { timeout: 120_000 }, async () => {
  const id = state.collection;
  const median = await measure(
    "documents",
    `/collections/${id}`,
    `() => !!document.querySelector('[data-testid="document-row"]') && !!document.querySelector('a[href="/collections/${id}"]')`,
  );
  assert.ok(median.time_to_interactive_ms < 10_000, "the documents page is usable within 10 s");
});
