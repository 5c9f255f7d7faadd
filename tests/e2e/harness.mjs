// Starts what a browser test needs: the real `berth` binary (embedded store, fresh data
// directory, its first admin made with `berth admin create`), the in-test model server, and
// headless Chromium through playwright-core; and watches every page for console errors.
//
// Run through `cargo xtask e2e`, which builds the binary and the UI and sets:
//   BERTH_BIN            the server binary
//   BERTH_E2E_CHROMIUM   the browser (Debian's /usr/bin/chromium)
//   BERTH_E2E_ARTIFACTS  where screenshots and timings go (test-artifacts/)

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHAT_MODEL, EMBED_MODEL, startModelServer } from "./fake-ollama.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

export const ADMIN = { username: "root", password: "Harbour-Root-Secret-2026!" };

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
    /** A browser context of its own (cookies: one user), with one page watched for errors. */
    async newPage(label, options = {}) {
      const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 860 }, ...options });
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
