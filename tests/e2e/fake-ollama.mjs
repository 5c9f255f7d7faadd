// An in-test model server speaking Ollama's API, as Berth's real client uses it:
//   POST /api/chat   streaming NDJSON: {"model","created_at","message":{"role":"assistant",
//                    "content":"..."},"done":false} per token, then a final {"done":true,
//                    "done_reason":"stop",...} with Ollama's counters
//   POST /api/embed  {"model","embeddings":[[...], ...]}
//   GET  /api/tags   the models it has
//   GET  /api/version
// The "model" is small: embeddings are hashed bags of words; an answer quotes the sentence of the
// numbered sources (in the system prompt) that shares most words with the question, and cites it.

import http from "node:http";

export const CHAT_MODEL = "test-chat";
export const EMBED_MODEL = "test-embed";
const DIM = 64;

export function words(text) {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 2)
    .map((w) => (w.length > 3 && w.endsWith("s") ? w.slice(0, -1) : w));
}

function fnv1a(word) {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(word)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

export function embed(text) {
  const v = new Array(DIM).fill(0);
  for (const w of words(text)) v[fnv1a(w) % DIM] += 1;
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => x / norm);
}

/** The sentence of the sources sharing most words with the question, cited as [n]. */
export function answer(messages) {
  const system = messages.find((m) => m.role === "system")?.content ?? "";
  const question = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
  const sources = new Map();
  let current = null;
  for (const line of system.split("\n")) {
    const head = /^\[(\d+)\] \(/.exec(line);
    if (head) {
      current = Number(head[1]);
      sources.set(current, "");
      continue;
    }
    if (current !== null) sources.set(current, `${sources.get(current)}${line} `);
  }
  const q = new Set(words(question));
  let best = null;
  for (const [n, text] of sources) {
    for (const sentence of text.match(/[^.!?]+[.!?]?/g) ?? []) {
      const overlap = words(sentence).filter((w) => q.has(w)).length;
      if (overlap > 0 && (!best || overlap > best.overlap)) best = { overlap, n, sentence: sentence.trim() };
    }
  }
  return best
    ? `According to the documents, ${best.sentence} [${best.n}]`
    : "I could not find that in the documents.";
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

function sendJson(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startModelServer() {
  const state = {
    chatCalls: 0,
    embedCalls: 0,
    lastChat: null,
    /** Delay between tokens, ms. */
    tokenDelay: 15,
    /** When set: send this many tokens, then wait for `gate.open`. */
    gate: null,
    /** When set: embedding requests fail with this HTTP status. */
    embedFailStatus: null,
    /** When set: the next answers are this text (Markdown, say) instead of a quoted sentence;
     * `[n]` in it cites the nth source. */
    reply: null,
  };

  const server = http.createServer(async (req, res) => {
    try {
      if (req.method === "GET" && req.url === "/api/version") return sendJson(res, 200, { version: "0.6.0" });
      if (req.method === "GET" && req.url === "/api/tags") {
        return sendJson(res, 200, {
          models: [CHAT_MODEL, EMBED_MODEL].map((name) => ({
            name,
            model: name,
            modified_at: new Date(0).toISOString(),
            size: 1,
            digest: "0".repeat(64),
            details: { format: "gguf", family: "test" },
          })),
        });
      }
      if (req.method === "POST" && req.url === "/api/embed") {
        state.embedCalls += 1;
        const body = await readJson(req);
        if (state.embedFailStatus) return sendJson(res, state.embedFailStatus, { error: "the embedding model refused the input" });
        if (body.model !== EMBED_MODEL) return sendJson(res, 404, { error: `model "${body.model}" not found, try pulling it first` });
        const inputs = Array.isArray(body.input) ? body.input : [body.input ?? ""];
        return sendJson(res, 200, {
          model: body.model,
          embeddings: inputs.map((t) => embed(String(t))),
          total_duration: 1000,
          load_duration: 10,
          prompt_eval_count: inputs.length,
        });
      }
      if (req.method === "POST" && req.url === "/api/chat") {
        state.chatCalls += 1;
        const body = await readJson(req);
        state.lastChat = body;
        if (body.model !== CHAT_MODEL) return sendJson(res, 404, { error: `model "${body.model}" not found, try pulling it first` });
        const text = state.reply ?? answer(body.messages ?? []);
        // Each token keeps the whitespace after it (line breaks too), so Markdown survives.
        const tokens = text.match(/\s*\S+\s*/gy) ?? [];
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        const record = (extra) =>
          `${JSON.stringify({ model: body.model, created_at: new Date().toISOString(), ...extra })}\n`;
        const gate = state.gate;
        for (const [i, token] of tokens.entries()) {
          if (gate && i === gate.after) await gate.opened;
          if (res.destroyed) return;
          res.write(record({ message: { role: "assistant", content: token }, done: false }));
          await sleep(state.tokenDelay);
        }
        res.end(
          record({
            message: { role: "assistant", content: "" },
            done: true,
            done_reason: "stop",
            total_duration: 1_000_000,
            load_duration: 1_000,
            prompt_eval_count: 10,
            prompt_eval_duration: 1_000,
            eval_count: tokens.length,
            eval_duration: 1_000_000,
          }),
        );
        return;
      }
      sendJson(res, 404, { error: "not found" });
    } catch (err) {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
      else res.destroy();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    /** The next answers stream `after` tokens, then wait until the returned function is called. */
    holdAfter(after) {
      let open;
      const opened = new Promise((r) => {
        open = r;
      });
      state.gate = { after, opened };
      return () => {
        state.gate = null;
        open();
      };
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
