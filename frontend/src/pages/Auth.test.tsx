import { afterEach, describe, expect, it } from "vitest";
import { screen, within, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { vi } from "vitest";
import { RegisterPage, SignInPage, safeNext } from "./Auth";
import { json, mockApi, renderWithClient, jsonBody } from "../test/utils";

const policy = {
  kind: "composition",
  min_length: 12,
  rules: ["at least 12 characters", "a digit", "not one of the 10,000 commonest passwords"],
};

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("RegisterPage", () => {
  it("shows the password policy, each broken rule as the API states it, then awaiting approval", async () => {
    let attempts = 0;
    const { calls } = mockApi({
      "GET /auth/password-policy": () => json(200, policy),
      "POST /auth/register": () => {
        attempts += 1;
        if (attempts === 1) {
          return json(422, {
            error: {
              code: "validation_failed",
              message: "the password is not accepted: use at least 12 characters; include a digit",
              details: {
                password: [
                  { rule: "min_length", message: "use at least 12 characters" },
                  { rule: "digit", message: "include a digit" },
                ],
              },
            },
          });
        }
        return json(202, {
          user: { id: "u1", username: "alice", role: "user", state: "pending", created_at: "2026-01-01T00:00:00Z" },
          message: "registered; your account awaits approval by an admin",
        });
      },
    });
    const user = userEvent.setup();
    renderWithClient(<RegisterPage />);

    const rules = await screen.findByRole("list", { name: "Password rules" });
    expect(within(rules).getAllByRole("listitem").map((li) => li.textContent)).toEqual(policy.rules);

    await user.type(screen.getByLabelText("User name"), "alice");
    await user.type(screen.getByLabelText("Password", { exact: true }), "weak");
    await user.type(screen.getByLabelText("Repeat the password"), "weak");
    await user.click(screen.getByRole("button", { name: "Register" }));

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The password is not accepted");
    expect(within(alert).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "use at least 12 characters",
      "include a digit",
    ]);
    expect(jsonBody(calls.find((c) => c.method === "POST")?.init)).toEqual({
      username: "alice",
      password: "weak",
    });

    const password = screen.getByLabelText("Password", { exact: true });
    await user.clear(password);
    await user.type(password, "Much-Better-Passw0rd");
    const again = screen.getByLabelText("Repeat the password");
    await user.clear(again);
    await user.type(again, "Much-Better-Passw0rd");
    await user.click(screen.getByRole("button", { name: "Register" }));

    expect(await screen.findByRole("heading", { name: "Awaiting approval" })).toBeInTheDocument();
    expect(screen.getByText("Registered; your account awaits approval by an admin.")).toBeInTheDocument();
  });

  it("checks that the two passwords match before asking the server", async () => {
    const { calls } = mockApi({ "GET /auth/password-policy": () => json(200, policy) });
    const user = userEvent.setup();
    renderWithClient(<RegisterPage />);
    await user.type(screen.getByLabelText("User name"), "bob");
    await user.type(screen.getByLabelText("Password", { exact: true }), "One-Password-123");
    await user.type(screen.getByLabelText("Repeat the password"), "Another-Password-123");
    await user.click(screen.getByRole("button", { name: "Register" }));
    expect(await screen.findByText("The two passwords differ.")).toBeInTheDocument();
    expect(screen.getByLabelText("Repeat the password")).toHaveAttribute("aria-invalid", "true");
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(0);
  });
});

describe("SignInPage", () => {
  it("shows the API's refusal, e.g. an account awaiting approval", async () => {
    mockApi({
      "POST /auth/sign-in": () =>
        json(403, { error: { code: "pending_approval", message: "your account awaits approval by an admin" } }),
    });
    const user = userEvent.setup();
    renderWithClient(<SignInPage />);
    await user.type(screen.getByLabelText("User name"), "alice");
    await user.type(screen.getByLabelText("Password"), "whatever");
    await user.keyboard("{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("Your account awaits approval by an admin");
  });

  it("signs in and goes where it was asked to", async () => {
    window.history.replaceState(null, "", "/sign-in?next=%2Fdocuments");
    mockApi({
      "POST /auth/sign-in": () =>
        json(200, {
          user: { id: "u1", username: "alice", role: "user", state: "active", created_at: "2026-01-01T00:00:00Z" },
          csrf_token: "tok",
        }),
    });
    const user = userEvent.setup();
    const { client } = renderWithClient(<SignInPage />);
    await user.type(screen.getByLabelText("User name"), "alice");
    await user.type(screen.getByLabelText("Password"), "Secret-Passw0rd");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(window.location.pathname).toBe("/documents"));
    expect(client.getQueryData(["session"])).toMatchObject({ user: { username: "alice" } });
  });

  it("shows a button per identity provider and says why a sign-in with one failed", async () => {
    window.history.replaceState(null, "", "/sign-in?sign_in_error=pending_approval&provider=corp");
    mockApi({
      "GET /auth/providers": () =>
        json(200, {
          password_login: true,
          providers: [
            { id: "corp", display_name: "Corp ID" },
            { id: "partner", display_name: "Partner SSO" },
          ],
        }),
    });
    renderWithClient(<SignInPage />);
    const corp = await screen.findByRole("link", { name: "Sign in with Corp ID" });
    expect(corp).toHaveAttribute("href", "/api/v1/auth/oidc/corp/start");
    expect(screen.getByRole("link", { name: "Sign in with Partner SSO" })).toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("Your account is waiting for an administrator's approval");
    expect(screen.getByLabelText("User name")).toBeInTheDocument();
  });

  it("hides the password form when password sign-in is off", async () => {
    window.history.replaceState(null, "", "/sign-in?sign_in_error=expired&provider=corp");
    mockApi({
      "GET /auth/providers": () =>
        json(200, { password_login: false, providers: [{ id: "corp", display_name: "Corp ID" }] }),
    });
    renderWithClient(<SignInPage />);
    expect(await screen.findByRole("link", { name: "Sign in with Corp ID" })).toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("Sign-in with Corp ID failed: the sign-in took too long. Try again.");
    expect(screen.queryByLabelText("User name")).not.toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Register" })).not.toBeInTheDocument();
  });

  it("never redirects off the site after signing in", () => {
    expect(safeNext("/chat/abc")).toBe("/chat/abc");
    expect(safeNext("//evil.example/")).toBe("/chat");
    expect(safeNext("https://evil.example/")).toBe("/chat");
    expect(safeNext(null)).toBe("/chat");
  });
});

describe("SignInPage after a session expired", () => {
  afterEach(() => {
    localStorage.clear();
    sessionStorage.clear();
  });

  it("says the session expired and that the typed question is kept, then forgets the notice", async () => {
    localStorage.setItem("berth.draft.c1", "When do the gates open?");
    sessionStorage.setItem("berth.sessionExpired", "1");
    window.history.replaceState(null, "", "/sign-in?next=%2Fchat%2Fc1&notice=session-expired");
    mockApi({
      "GET /auth/providers": () => json(200, { password_login: true, providers: [] }),
      "POST /auth/sign-in": () =>
        json(200, {
          user: { id: "u1", username: "alice", role: "user", state: "active", created_at: "2026-01-01T00:00:00Z" },
          csrf_token: "tok",
        }),
    });
    const user = userEvent.setup();
    renderWithClient(<SignInPage />);
    expect(screen.getByText("Your session expired — sign in again; your question is kept.")).toBeInTheDocument();
    await user.type(screen.getByLabelText("User name"), "alice");
    await user.type(screen.getByLabelText("Password"), "pw");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(window.location.pathname).toBe("/chat/c1"));
    expect(sessionStorage.getItem("berth.sessionExpired")).toBeNull();
  });
});
