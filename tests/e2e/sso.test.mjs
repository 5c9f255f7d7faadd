// Single sign-on in the browser: Berth's sign-in page shows the identity provider's button, the
// provider's own login form signs the person in, and they land in Berth's chat. The provider is
// a real one (tests/oidc/provider.mjs: the npm package oidc-provider) on 127.0.0.1.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { setUp } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const CLIENT = { client_id: "berth", client_secret: "berth-e2e-client-secret" };

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Starts the test provider with Berth's client and one account; resolves with its issuer. */
function startProvider(dir, berthUrl) {
  const config = join(dir, "provider.json");
  writeFileSync(
    config,
    JSON.stringify({
      port: 0,
      clients: [
        {
          ...CLIENT,
          redirect_uris: [`${berthUrl}/api/v1/auth/oidc/corp/callback`],
          post_logout_redirect_uris: [`${berthUrl}/`],
        },
      ],
      accounts: {
        bob: { password: "bob-at-the-provider", claims: { preferred_username: "bob", email: "bob@example.com", groups: ["staff"] } },
      },
    }),
  );
  const child = spawn(process.execPath, [resolve(here, "../oidc/provider.mjs"), config], { stdio: ["ignore", "pipe", "pipe"] });
  const output = [];
  child.stderr.on("data", (d) => output.push(String(d)));
  const issuer = new Promise((resolveIssuer, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      try {
        resolveIssuer(JSON.parse(line).issuer);
      } catch {
        reject(new Error(`the test provider did not start: ${line}\n${output.join("")}`));
      }
      // Keep reading: a closed pipe would stop the provider at its next log line.
      lines.on("line", () => undefined);
    });
    child.on("exit", (code) => reject(new Error(`the test provider exited (${code}):\n${output.join("")}`)));
  });
  return { child, issuer };
}

let env;
let provider;
let dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "berth-e2e-sso-"));
  const port = await freePort();
  const berthUrl = `http://127.0.0.1:${port}`;
  provider = startProvider(dir, berthUrl);
  const issuer = await provider.issuer;
  const secret = join(dir, "corp.secret");
  writeFileSync(secret, `${CLIENT.client_secret}\n`);
  chmodSync(secret, 0o600);
  const providers = join(dir, "providers.toml");
  writeFileSync(
    providers,
    [
      "[[provider]]",
      'id = "corp"',
      'display_name = "Corp ID"',
      `issuer = "${issuer}"`,
      `client_id = "${CLIENT.client_id}"`,
      'client_secret_file = "corp.secret"',
      'scopes = ["openid", "profile", "email", "groups"]',
      'auto_approve_groups = ["staff"]',
      "",
    ].join("\n"),
  );
  env = await setUp({
    listen: `127.0.0.1:${port}`,
    serverEnv: { BERTH_PUBLIC_URL: berthUrl, BERTH_OIDC_PROVIDERS_FILE: providers },
  });
});

after(async () => {
  await env?.tearDown();
  provider?.child.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("signs in through the identity provider's login page and lands in the chat", { timeout: 60_000 }, async () => {
  const page = await env.newPage("bob");
  await page.goto("/");
  const button = page.getByRole("link", { name: "Sign in with Corp ID" });
  await button.waitFor();
  await env.screenshot(page, "sso-00-sign-in-page");
  await button.click();
  // The provider's own page, on its own origin.
  await page.getByRole("heading", { name: "Test provider sign-in" }).waitFor();
  assert.ok(page.url().startsWith(await provider.issuer), page.url());
  await env.screenshot(page, "sso-01-provider-login");
  await page.getByLabel("Login").fill("bob");
  await page.getByLabel("Password").fill("bob-at-the-provider");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
  assert.equal(new URL(page.url()).pathname, "/chat");
  await env.screenshot(page, "sso-02-signed-in-chat");
  const session = await page.evaluate(async () => (await fetch("/api/v1/auth/session")).json());
  assert.equal(session.user.username, "bob");

  // Signing out ends Berth's session and offers the provider's own sign-out.
  await page.getByRole("button", { name: "Sign out" }).click();
  const providerSignOut = page.getByRole("link", { name: "Sign out of your organisation's account too" });
  await providerSignOut.waitFor();
  assert.ok((await providerSignOut.getAttribute("href")).startsWith(`${await provider.issuer}/session/end?`));
  await env.screenshot(page, "sso-03-signed-out");
  assert.deepEqual(env.problems, []);
});
