import { describe, expect, it } from "vitest";
import { splitAround, stateLabel, type Account } from "./teamApi";

const account = (patch: Partial<Account>): Account => ({
  id: "u1",
  username: "carol",
  role: "user",
  state: "active",
  created_at: "2026-01-01T00:00:00Z",
  ...patch,
});

describe("stateLabel", () => {
  it("shows a locked account as locked, with until when", () => {
    const now = new Date("2026-01-01T10:00:00Z");
    const label = stateLabel(account({ locked_until: "2026-01-01T10:15:00Z" }), now);
    expect(label).toMatch(/^locked \(until .*\d\d.\d\d.*\)$/);
  });

  it("shows the state once the lock has passed", () => {
    const now = new Date("2026-01-01T11:00:00Z");
    expect(stateLabel(account({ locked_until: "2026-01-01T10:15:00Z" }), now)).toBe("active");
    expect(stateLabel(account({ state: "disabled" }), now)).toBe("disabled");
  });
});

describe("splitAround", () => {
  it("cuts by code points, as the server counts", () => {
    // "🚢" is one char to the server and two UTF-16 units to JavaScript.
    const text = "🚢 ahoy there";
    expect(splitAround(text, { id: 1, start: 2, end: 6 })).toEqual(["🚢 ", "ahoy", " there"]);
  });

  it("keeps the whole text when there is no passage", () => {
    expect(splitAround("plain", undefined)).toEqual(["plain", "", ""]);
  });
});
