import { describe, expect, it } from "vitest";
import { EventStreamParser, readEventStream, type ServerSentEvent } from "./sse";

function streamOf(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
      controller.close();
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<ServerSentEvent[]> {
  const events: ServerSentEvent[] = [];
  for await (const event of readEventStream(stream)) events.push(event);
  return events;
}

describe("EventStreamParser", () => {
  it("parses named events with JSON data", () => {
    const parser = new EventStreamParser();
    const events = parser.push('event: token\ndata: {"text":"Hel"}\n\nevent: token\ndata: {"text":"lo"}\n\n');
    expect(events).toEqual([
      { event: "token", data: '{"text":"Hel"}' },
      { event: "token", data: '{"text":"lo"}' },
    ]);
  });

  it("keeps an event split across chunks, even mid-line and mid-CRLF", () => {
    const parser = new EventStreamParser();
    expect(parser.push("event: sou")).toEqual([]);
    expect(parser.push("rces\r")).toEqual([]);
    expect(parser.push("\ndata: {}\r")).toEqual([]);
    expect(parser.push("\n\r\n")).toEqual([{ event: "sources", data: "{}" }]);
  });

  it("joins data lines, ignores comments and unknown fields, defaults the type", () => {
    const parser = new EventStreamParser();
    const events = parser.push(": keep-alive\nretry: 1000\nfoo: bar\ndata: one\ndata:two\nid: 7\n\n");
    expect(events).toEqual([{ event: "message", data: "one\ntwo", id: "7" }]);
  });

  it("drops only one leading space, and dispatches no event without data", () => {
    const parser = new EventStreamParser();
    expect(parser.push("event: ping\n\n")).toEqual([]);
    expect(parser.push("data:  two spaces\n\n")).toEqual([{ event: "message", data: " two spaces" }]);
  });

  it("accepts bare CR line ends", () => {
    const parser = new EventStreamParser();
    expect(parser.push("event: done\rdata: x\r\r")).toEqual([{ event: "done", data: "x" }]);
  });

  it("discards an unterminated final event", () => {
    const parser = new EventStreamParser();
    expect(parser.push("event: token\ndata: half")).toEqual([]);
    expect(parser.end()).toEqual([]);
  });
});

describe("readEventStream", () => {
  it("decodes UTF-8 split across chunks", async () => {
    const bytes = new TextEncoder().encode('event: token\ndata: {"text":"café ⚓"}\n\n');
    // Split inside the multi-byte characters.
    const cut = bytes.indexOf(0xc3) + 1;
    const events = await collect(streamOf([bytes.slice(0, cut), bytes.slice(cut, cut + 12), bytes.slice(cut + 12)]));
    expect(events).toEqual([{ event: "token", data: '{"text":"café ⚓"}' }]);
  });

  it("cancels the body when the consumer stops early", async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("data: 1\n\ndata: 2\n\n"));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const event of readEventStream(stream)) {
      expect(event.data).toBe("1");
      break;
    }
    expect(cancelled).toBe(true);
  });
});
