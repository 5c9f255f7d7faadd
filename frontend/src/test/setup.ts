import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { afterEach, beforeEach, expect, vi } from "vitest";

// jsdom implements no layout: give the scrolling calls the pages make something to call.
Element.prototype.scrollIntoView = function scrollIntoView() {};
window.scrollTo = () => {};

// A React warning (an update outside act(), a missing key...) fails the test that caused it.
let consoleErrors: unknown[][] = [];
beforeEach(() => {
  consoleErrors = [];
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    consoleErrors.push(args);
  });
});

afterEach(() => {
  cleanup();
  window.history.replaceState(null, "", "/");
  const errors = consoleErrors.map((args) => args.map(String).join(" "));
  expect(errors, "console.error was called").toEqual([]);
});
