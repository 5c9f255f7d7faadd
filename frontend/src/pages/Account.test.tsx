import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { AccountPage } from "./Account";
import type { TokenInfo, User } from "../api";
import { json, mockApi, renderWithClient, jsonBody } from "../test/utils";

afterEach(() => {
  vi.unstubAllGlobals();
});

const me: User = { id: "u1", username: "alice", role: "user", state: "active", created_at: "2026-01-01T00:00:00Z" };
const policy = { kind: "length", min_length: 15, rules: ["at least 15 characters"] };

describe("AccountPage", () => {
  it("shows a new token's secret once, lists and revokes tokens", async () => {
    const tokens: TokenInfo[] = [];
    mockApi({
      "GET /auth/password-policy": () => json(200, policy),
      "GET /account/tokens": () => json(200, tokens),
      "POST /account/tokens": () => {
        const info = { id: "t1", name: "backup", prefix: "berth_abc123", created_at: "2026-01-01T00:00:00Z", last_used_at: null, revoked_at: null };
        tokens.push(info);
        return json(201, { ...info, token: "berth_abc123-the-whole-secret" });
      },
      "DELETE /account/tokens/t1": () => {
        const first = tokens[0];
        if (first) first.revoked_at = "2026-01-01T01:00:00Z";
        return json(204, null);
      },
    });
    const user = userEvent.setup();
    renderWithClient(<AccountPage user={me} />);
    await screen.findByText("No tokens yet.");
    await user.type(screen.getByLabelText("Token name"), "backup");
    await user.click(screen.getByRole("button", { name: "Create token" }));
    expect(await screen.findByTestId("new-token")).toHaveTextContent("berth_abc123-the-whole-secret");
    expect(await screen.findByText("backup")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Done" }));
    expect(screen.queryByTestId("new-token")).toBeNull();

    await user.click(screen.getByRole("button", { name: "Revoke backup" }));
    expect(await screen.findByText("revoked")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Revoke backup" })).toBeNull();
  });

  it("changes the password and sends the user to sign in again", async () => {
    window.history.replaceState(null, "", "/account");
    const { calls } = mockApi({
      "GET /auth/password-policy": () => json(200, policy),
      "GET /account/tokens": () => json(200, []),
      "POST /account/password": () => json(204, null),
    });
    const user = userEvent.setup();
    renderWithClient(<AccountPage user={me} />);
    await user.type(screen.getByLabelText("Current password"), "old-password-123");
    await user.type(screen.getByLabelText("New password"), "a-new-long-password");
    await user.type(screen.getByLabelText("Repeat the new password"), "a-new-long-password");
    await user.click(screen.getByRole("button", { name: "Change password" }));
    await waitFor(() => expect(window.location.search).toBe("?notice=password-changed"));
    expect(jsonBody(calls.find((c) => c.method === "POST")?.init)).toEqual({
      current_password: "old-password-123",
      new_password: "a-new-long-password",
    });
  });

  it("shows a wrong current password as the API states it", async () => {
    mockApi({
      "GET /auth/password-policy": () => json(200, policy),
      "GET /account/tokens": () => json(200, []),
      "POST /account/password": () => json(403, { error: { code: "wrong_password", message: "the current password is wrong" } }),
    });
    const user = userEvent.setup();
    renderWithClient(<AccountPage user={me} />);
    await user.type(screen.getByLabelText("Current password"), "nope");
    await user.type(screen.getByLabelText("New password"), "a-new-long-password");
    await user.type(screen.getByLabelText("Repeat the new password"), "a-new-long-password");
    await user.click(screen.getByRole("button", { name: "Change password" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The current password is wrong");
  });
});
