// Starts what a browser test needs: the real `berth` binary (embedded store, fresh data
// directory, its first admin made with `berth admin create`), the in-test model server, and
// headless Chromium through playwright-core; and watches every page for console errors.
//
// Run through `cargo xtask e2e`, which builds the binary and the UI and sets:
//   BERTH_BIN            the server binary
//   BERTH_E2E_CHROMIUM   the browser (Debian's /usr/bin/chromium)
//   BERTH_E2E_ARTIFACTS  where screenshots and timings go (test-artifacts/)

import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { CHAT_MODEL, EMBED_MODEL, startModelServer } from "./fake-ollama.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

/** A document long enough for several passages, so a cited one has text around it. */
export const HANDBOOK = [
  "Harbour handbook",
  "",
  "Welcome aboard. This handbook tells visiting crews how the harbour works, from arrival to departure. " +
    "Read it before you moor; the harbour office answers anything it leaves out.",
  "",
  "Arrival. Call the harbour office on channel twelve when you are one mile out. " +
    "Wait outside the breakwater until a pilot boat waves you in. Keep to five knots inside the harbour.",
  "",
  "Opening hours. The harbour gates open at dawn and close at dusk every day of the year. " +
    "Visiting boats report to the harbour master within one hour of arrival.",
  "",
  "Fees. Mooring fees are paid weekly at the office beside the lighthouse. " +
    "Fuel is sold on the north pier between eight and noon. Showers take tokens from the office.",
  "",
  "Safety. Life jackets are worn on the pontoons after dark. Fires and barbecues are forbidden on deck. " +
    "Report any spill to the harbour master at once.",
  "",
  "Departure. Settle your fees, return the gate key, and call the office before you cast off.",
]
  .join("\n");

export const ADMIN = { username: "root", password: "Harbour-Root-Secret-2026!" };

/**
 * The four ways the UI is checked: desktop and a 390×844 phone, each light and dark. Feature
 * tests run at `desktop-light` and `phone-dark` (both sizes, both themes); the page sweep visits
 * every page in all four.
 */
export const LAYOUTS = {
  "desktop-light": { viewport: { width: 1280, height: 860 }, colorScheme: "light" },
  "desktop-dark": { viewport: { width: 1280, height: 860 }, colorScheme: "dark" },
  "phone-light": { viewport: { width: 390, height: 844 }, colorScheme: "light", isMobile: true, hasTouch: true },
  "phone-dark": { viewport: { width: 390, height: 844 }, colorScheme: "dark", isMobile: true, hasTouch: true },
};

/** The layouts each feature test runs in. */
export const FEATURE_LAYOUTS = ["desktop-light", "phone-dark"];

/**
 * Registers one node:test per feature layout, named `title [layout]`; `fn(layout)` gets the
 * layout's name (pass it to `env.newPage(label, { layout })`).
 */
export function eachLayout(title, fn, options = {}) {
  for (const layout of FEATURE_LAYOUTS) {
    test(`${title} [${layout}]`, { timeout: 120_000, ...options }, () => fn(layout));
  }
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** The impacts that fail a page: axe-core's two highest. */
const FAILING_IMPACTS = new Set(["serious", "critical"]);

/**
 * Checks what every page must hold in every layout: nothing wider than the window (no
 * sideways scrolling on a phone) and no serious or critical accessibility violation (axe-core,
 * WCAG 2.x A and AA rules). Fails with what is wrong and where.
 */
export async function checkPage(page, label) {
  // The device's width, not innerWidth: a phone browser zooms out to fit a page too wide for
  // it, and innerWidth grows with the page.
  const device = page.viewportSize().width;
  const width = await page.evaluate((device) => ({
    scroll: document.documentElement.scrollWidth,
    inner: device,
    widest: [...document.querySelectorAll("body *")]
      .filter((el) => el.getBoundingClientRect().right > device + 0.5)
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}.${[...el.classList].slice(0, 3).join(".")} (right ${Math.round(el.getBoundingClientRect().right)})`),
  }), device);
  // Nor anything cut off inside a box that scrolls sideways (a table's last column, say), but
  // code blocks and text shortened with an ellipsis.
  const clipped = await page.evaluate(() =>
    [...document.querySelectorAll("body *")]
      .filter((el) => {
        const style = getComputedStyle(el);
        return (
          // Screen-reader-only text is 1 px wide on purpose.
          el.clientWidth > 1 &&
          el.scrollWidth > el.clientWidth + 1 &&
          ["auto", "scroll", "hidden"].includes(style.overflowX) &&
          style.textOverflow !== "ellipsis" &&
          !el.closest("pre, textarea, code, [data-scrolls-sideways]")
        );
      })
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].slice(0, 3).join(".")} (${el.scrollWidth} px in ${el.clientWidth})`),
  );
  assert.deepEqual(clipped, [], `${label}: content cut off or scrolling sideways`);
  assert.ok(
    width.scroll <= width.inner,
    `${label}: the page is ${width.scroll} px wide in a ${width.inner} px window; past the edge: ${width.widest.join(", ")}`,
  );
  // Evaluated through the DevTools protocol, so the page's CSP (no inline script) stays on.
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
      resultTypes: ["violations"],
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")}: ${n.failureSummary?.split("\n").slice(1, 2).join("")}`),
    }));
  });
  const failing = violations.filter((v) => FAILING_IMPACTS.has(v.impact));
  assert.deepEqual(
    failing.map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.targets.join("\n    ")}`),
    [],
    `${label}: accessibility violations (axe-core)`,
  );
}

export const artifacts = process.env.BERTH_E2E_ARTIFACTS ?? join(root, "test-artifacts");
export const screenshots = join(artifacts, "screenshots");

function required(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (!value) throw new Error(`${name} is not set: run the browser tests with \`cargo xtask e2e\``);
  return value;
}

/** Runs `berth admin create` for the first admin, the password on standard input. */
function createAdmin(bin, dataDir) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, ["admin", "create", "--username", ADMIN.username, "--password-stdin", "--data-dir", dataDir], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, BERTH_LOG_FORMAT: "json" },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolvePromise() : reject(new Error(`berth admin create exited with ${code}:\n${output}`)),
    );
    child.stdin.end(`${ADMIN.password}\n`);
  });
}

/** Starts `berth serve` on a port of the kernel's choosing; resolves with its base URL. */
function startServer(bin, dataDir, env, listen = "127.0.0.1:0") {
  const child = spawn(bin, ["serve", "--listen", listen, "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, BERTH_LOG_FORMAT: "json", BERTH_LOG_LEVEL: "info", ...env },
  });
  const logs = [];
  const base = new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`berth did not start in 60 s:\n${logs.join("\n")}`)), 60_000);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        logs.push(line);
        if (!line.includes("Berth is listening")) return;
        try {
          const { address } = JSON.parse(line);
          clearTimeout(timer);
          resolvePromise(`http://${address}`);
        } catch {
          // Not the JSON line we wait for.
        }
      });
    }
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`berth exited (${code}) before listening:\n${logs.join("\n")}`));
    });
  });
  return { child, logs, base };
}

function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolvePromise();
    });
    child.kill("SIGTERM");
  });
}

/** Chromium's messages for API answers the UI expects and shows (401 before signing in, 422
 * for a refused password...). Anything else logged as an error fails the test. */
export function isExpectedApiRefusal(text, url) {
  const match = /^Failed to load resource: the server responded with a status of (\d{3})/.exec(text);
  if (!match || !url) return false;
  const status = Number(match[1]);
  let path = "";
  try {
    path = new URL(url).pathname;
  } catch {
    return false;
  }
  return status >= 400 && status < 500 && status !== 404 && path.startsWith("/api/v1/");
}

/** The real embedding model `cargo xtask fixtures` unpacks (all-MiniLM-L6-v2). */
function testEmbeddingModel() {
  const models = process.env.BERTH_TEST_MODELS ?? join(homedir(), ".cache/berth/test-models");
  const dir = join(models, "sentence-transformers/all-MiniLM-L6-v2");
  if (!existsSync(join(dir, "model.safetensors"))) {
    throw new Error(`the test embedding model is missing at ${dir}: run \`cargo xtask fixtures models\``);
  }
  return dir;
}

/**
 * Starts the server, the browser and (for `models: "fake"`, the default) the in-test model
 * server as Berth's LLM and embedder. `models: "builtin"`: the real built-in embedder and no
 * LLM (answers are extractive), as `cargo xtask dev` runs with only the fixtures' model.
 * `listen` (default a port of the kernel's choosing) and `serverEnv` (more BERTH_* settings) for
 * a test that must know Berth's address beforehand, as single sign-on does.
 */
export async function setUp({ models = "fake", listen, serverEnv = {} } = {}) {
  const bin = resolve(required("BERTH_BIN", join(root, "target/debug/berth")));
  const executablePath = required("BERTH_E2E_CHROMIUM", "/usr/bin/chromium");
  // This run's screenshots only (each test file writes its own names).
  mkdirSync(screenshots, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), "berth-e2e-"));
  const llm = models === "fake" ? await startModelServer() : null;
  const modelEnv = llm
    ? {
        BERTH_LLM_URL: llm.url,
        BERTH_LLM_MODEL: CHAT_MODEL,
        BERTH_EMBED_URL: llm.url,
        BERTH_EMBED_MODEL: EMBED_MODEL,
      }
    : { BERTH_EMBED_API: "builtin", BERTH_EMBED_MODEL_DIR: testEmbeddingModel(), BERTH_EMBED_THREADS: "1" };
  await createAdmin(bin, dataDir);
  const server = startServer(bin, dataDir, {
    ...modelEnv,
    // Small passages, so a test document has several and a cited one has text around it.
    BERTH_CHUNK_SIZE: "300",
    BERTH_CHUNK_OVERLAP: "30",
    ...serverEnv,
  }, listen);
  const baseURL = await server.base;
  const browser = await chromium.launch({
    executablePath,
    headless: !process.env.BERTH_E2E_HEADED,
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-gpu",
      "--disable-quic",
    ],
  });

  /** Every console error and uncaught exception of every page, as `label: message`. */
  const problems = [];
  const contexts = [];

  const env = {
    baseURL,
    llm,
    browser,
    problems,
    serverLogs: server.logs,
    /**
     * A browser context of its own (cookies: one user), with one page watched for errors.
     * `layout`: one of LAYOUTS' names (default desktop-light); other options go to Playwright.
     */
    async newPage(label, { layout = "desktop-light", ...options } = {}) {
      const shape = LAYOUTS[layout];
      if (!shape) throw new Error(`no layout ${layout}: one of ${Object.keys(LAYOUTS).join(", ")}`);
      const context = await browser.newContext({ baseURL, ...shape, ...options });
      contexts.push(context);
      const page = await context.newPage();
      env.watch(page, label);
      page.setDefaultTimeout(20_000);
      return page;
    },
    watch(page, label) {
      page.on("console", (msg) => {
        if (msg.type() !== "error") return;
        const url = msg.location()?.url ?? "";
        if (isExpectedApiRefusal(msg.text(), url)) return;
        problems.push(`${label}: console error on ${page.url()}: ${msg.text()}${url ? ` (${url})` : ""}`);
      });
      page.on("pageerror", (err) => problems.push(`${label}: uncaught exception on ${page.url()}: ${err.message}`));
    },
    async screenshot(page, name) {
      await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
    },
    writeArtifact(name, data) {
      writeFileSync(join(artifacts, name), `${JSON.stringify(data, null, 2)}\n`);
    },
    async tearDown() {
      for (const context of contexts) await context.close().catch(() => undefined);
      await browser.close().catch(() => undefined);
      await stopServer(server.child);
      await llm?.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return env;
}

/** Signs in through the sign-in page and waits for the signed-in layout. */
export async function signIn(page, username, password) {
  await page.goto("/sign-in");
  await page.getByLabel("User name").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
}

/**
 * Berth's API as the user signed in on `page` (its cookies and CSRF token), for setting up what
 * a test is not about. Throws with the API's answer on any non-2xx.
 */
export async function apiOf(page) {
  const request = page.context().request;
  const session = await (await request.get("/api/v1/auth/session")).json();
  const headers = { "X-CSRF-Token": session.csrf_token };
  const call = async (method, path, options = {}) => {
    const response = await request.fetch(`/api/v1${path}`, { method, headers, ...options });
    const text = await response.text();
    if (!response.ok()) throw new Error(`${method} ${path}: ${response.status()} ${text}`);
    return text && response.headers()["content-type"]?.includes("json") ? JSON.parse(text) : text;
  };
  const api = {
    get: (path) => call("GET", path),
    post: (path, data) => call("POST", path, data === undefined ? {} : { data }),
    delete: (path) => call("DELETE", path),
    upload: (collectionId, name, text, mimeType = "text/plain") =>
      call("POST", `/collections/${collectionId}/documents`, {
        multipart: { file: { name, mimeType, buffer: Buffer.from(text) } },
      }),
    /** Waits until ingestion of the document ends; fails if it failed. */
    async waitReady(documentId, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const document = await api.get(`/documents/${documentId}`);
        if (document.status === "ready") return document;
        if (document.status === "failed") throw new Error(`ingestion failed: ${JSON.stringify(document)}`);
        if (Date.now() > deadline) throw new Error(`document ${documentId} not ready in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    /** Asks in a conversation and waits for the whole streamed answer. */
    ask: (conversationId, content) => call("POST", `/conversations/${conversationId}/messages`, { data: { content } }),
  };
  return api;
}
