// A real OpenID Provider for Berth's single sign-on tests: oidc-provider (a certified
// implementation) on 127.0.0.1, with its own login form, test clients and accounts from a JSON
// file, and a few test-only endpoints under /test/ that make the provider misbehave on purpose.
//
//   node provider.mjs CONFIG.json
//
// CONFIG: { "port": 0, "clients": [{ "client_id", "client_secret", "redirect_uris",
//           "post_logout_redirect_uris"? }], "accounts": { "LOGIN": { "password", "claims" } } }
// Prints one JSON line when listening: { "issuer": "http://127.0.0.1:PORT", "port": PORT }.
//
// Test-only endpoints (never in a real provider):
//   POST /test/next-id-token?mode=M  the next ID token from /token is re-signed: `expired` (exp
//        in the past), `wrong_aud` (another audience), `wrong_nonce`, `forged` (signed with a key
//        the provider does not publish, under a published key's id), `unknown_kid` (the same
//        under an id nobody knows). Real key, real token otherwise.
//   POST /test/rotate  a new signing key: tokens are signed with it from now on, and the
//        published key set has it first (the old keys stay published, as in a real rotation).
//   GET  /test/jwks-fetches  how often the key set was fetched.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

async function newKey() {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

let keys = [await newKey()];
// Signs the forged tokens: never published.
const unpublished = await newKey();
let nextMode = null;
let jwksFetches = 0;

const server = http.createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

function findAccount(_ctx, id) {
  const account = config.accounts[id];
  if (!account) return undefined;
  return { accountId: id, claims: async () => ({ sub: id, ...account.claims }) };
}

async function resign(idToken, mode) {
  const payload = jose.decodeJwt(idToken);
  const header = jose.decodeProtectedHeader(idToken);
  const now = Math.floor(Date.now() / 1000);
  let key = keys[0];
  let kid = header.kid;
  if (mode === 'expired') Object.assign(payload, { iat: now - 1200, exp: now - 600 });
  else if (mode === 'wrong_aud') payload.aud = 'another-client';
  else if (mode === 'wrong_nonce') payload.nonce = 'not-the-nonce-berth-sent';
  else if (mode === 'forged') key = unpublished;
  else if (mode === 'unknown_kid') [key, kid] = [unpublished, `unknown-${randomUUID()}`];
  else throw new Error(`unknown mode ${mode}`);
  const signing = await jose.importJWK(key, 'RS256');
  return new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(signing);
}

function makeProvider() {
  const provider = new Provider(issuer, {
    clients: config.clients.map((c) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...c,
    })),
    jwks: { keys },
    findAccount,
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // The claims of the scopes asked for go into the ID token (Berth reads only the ID token).
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    cookies: { keys: ['test-only-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  provider.use(async (ctx, next) => {
    if (ctx.path === '/jwks') jwksFetches += 1;
    await next();
    if (ctx.path === '/token' && nextMode && ctx.body?.id_token) {
      const mode = nextMode;
      nextMode = null;
      ctx.body = { ...ctx.body, id_token: await resign(ctx.body.id_token, mode) };
    }
  });
  return provider;
}

let provider = makeProvider();

function page(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Test provider</title></head><body>${body}</body></html>`);
}

function loginForm(uid, error) {
  return `<h1>Test provider sign-in</h1>${error ? `<p id="error">${error}</p>` : ''}
    <form method="post" action="/interaction/${uid}/login">
      <label>Login <input name="login" autocomplete="username"></label>
      <label>Password <input name="password" type="password" autocomplete="current-password"></label>
      <button type="submit">Sign in</button>
    </form>`;
}

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

// Approves every scope and claim asked for: the test clients are first-party.
async function consent(req, res, interaction) {
  const { prompt: { details }, params, session: { accountId } } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    const login = url.pathname.match(/^\/interaction\/([^/]+)\/login$/);
    const interactionPath = url.pathname.match(/^\/interaction\/([^/]+)$/);
    if (url.pathname === '/favicon.ico') {
      // A browser asks for it; a 404 would count as a console error in the browser test.
      res.writeHead(204).end();
    } else if (req.method === 'POST' && url.pathname === '/test/next-id-token') {
      nextMode = url.searchParams.get('mode');
      res.writeHead(204).end();
    } else if (req.method === 'POST' && url.pathname === '/test/rotate') {
      keys = [await newKey(), ...keys];
      provider = makeProvider();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kid: keys[0].kid }));
    } else if (req.method === 'GET' && url.pathname === '/test/jwks-fetches') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ fetches: jwksFetches }));
    } else if (req.method === 'GET' && interactionPath) {
      const interaction = await provider.interactionDetails(req, res);
      if (interaction.prompt.name === 'login') page(res, 200, loginForm(interaction.uid));
      else await consent(req, res, interaction);
    } else if (req.method === 'POST' && login) {
      const interaction = await provider.interactionDetails(req, res);
      const form = await body(req);
      const account = config.accounts[form.get('login')];
      if (!account || account.password !== form.get('password')) {
        page(res, 200, loginForm(interaction.uid, 'Wrong login or password'));
      } else {
        await provider.interactionFinished(req, res, { login: { accountId: form.get('login') } }, {
          mergeWithLastSubmission: false,
        });
      }
    } else {
      provider.callback()(req, res);
    }
  } catch (err) {
    console.error(err);
    page(res, 500, `<p>test provider error: ${String(err.message)}</p>`);
  }
});

console.log(JSON.stringify({ issuer, port }));
