/**
 * A parser for `text/event-stream` (the Server-Sent Events wire format), for responses that
 * EventSource cannot read: Berth's chat answer streams in reply to a POST.
 *
 * It follows the HTML standard's parsing rules: lines end in CRLF, LF or CR; `:` starts a
 * comment; `data` lines of one event are joined with newlines; a blank line dispatches the
 * event; an event without data is not dispatched; one leading space after the colon is dropped.
 */

export interface ServerSentEvent {
  /** The `event:` field, or "message" when there was none. */
  event: string;
  data: string;
  id?: string;
}

/** Incremental parser: feed it text as it arrives, take out the complete events. */
export class EventStreamParser {
  private buffer = "";
  private eventType = "";
  private data: string[] = [];
  private lastId: string | undefined;
  /** A chunk ended in CR: if the next starts with LF, that LF belongs to the same line end. */
  private pendingCR = false;

  push(chunk: string): ServerSentEvent[] {
    let text = chunk;
    if (this.pendingCR && text.startsWith("\n")) {
      text = text.slice(1);
    }
    this.pendingCR = false;
    this.buffer += text;
    const events: ServerSentEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) {
        this.pendingCR = true;
      }
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  /** The stream ended: a final event without its blank line is discarded, as the standard says. */
  end(): ServerSentEvent[] {
    this.buffer = "";
    this.data = [];
    this.eventType = "";
    return [];
  }

  private line(line: string): ServerSentEvent | undefined {
    if (line === "") {
      return this.dispatch();
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.lastId = value;
        break;
      default:
        // `retry` and unknown fields: nothing to do for a one-shot stream.
        break;
    }
    return undefined;
  }

  private dispatch(): ServerSentEvent | undefined {
    const type = this.eventType || "message";
    const data = this.data;
    this.eventType = "";
    this.data = [];
    if (data.length === 0) return undefined;
    const event: ServerSentEvent = { event: type, data: data.join("\n") };
    if (this.lastId !== undefined) event.id = this.lastId;
    return event;
  }
}

/** Reads a response body as a stream of server-sent events. */
export async function* readEventStream(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ServerSentEvent, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parser = new EventStreamParser();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        const rest = decoder.decode();
        if (rest) yield* parser.push(rest);
        yield* parser.end();
        return;
      }
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
  } finally {
    // The consumer stopped early (or threw): tell the server we are no longer listening.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
