import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { AdminPage, localToRfc3339 } from "./Admin";
import type { AuditEntry, User } from "../api";
import { json, mockApi, renderWithClient } from "../test/utils";

afterEach(() => {
  vi.unstubAllGlobals();
});

const me: User = { id: "a1", username: "root", role: "admin", state: "active", created_at: "2026-01-01T00:00:00Z" };
const bob: User = { id: "u2", username: "bob", role: "user", state: "pending", created_at: "2026-01-02T00:00:00Z" };

function entry(id: number, event = "auth.sign_in"): AuditEntry {
  return {
    id,
    at: "2026-01-02T10:00:00Z",
    event,
    outcome: "success",
    actor_id: "a1",
    actor_name: "root",
    target_id: "u2",
    target_name: "bob",
    client_addr: "127.0.0.1",
    user_agent: null,
    detail: null,
  };
}

describe("AdminPage", () => {
  it("approves and denies pending accounts", async () => {
    let pending = [bob, { ...bob, id: "u3", username: "eve" }];
    const { calls } = mockApi({
      "GET /admin/users": () => json(200, pending),
      "POST /admin/users/u2/approve": () => {
        pending = pending.filter((u) => u.id !== "u2");
        return json(200, { ...bob, state: "active" });
      },
      "POST /admin/users/u3/deny": () => {
        pending = [];
        return json(200, { ...bob, id: "u3", state: "denied" });
      },
    });
    const user = userEvent.setup();
    renderWithClient(<AdminPage tab="approvals" me={me} />);
    await user.click(await screen.findByRole("button", { name: "Approve bob" }));
    await waitFor(() => expect(screen.queryByText("bob")).toBeNull());
    await user.click(screen.getByRole("button", { name: "Deny eve" }));
    expect(await screen.findByText("Nobody is waiting for approval.")).toBeInTheDocument();
    expect(calls.find((c) => c.path === "/admin/users")?.url.searchParams.get("state")).toBe("pending");
  });

  it("shows a refused change in the API's words", async () => {
    mockApi({
      "GET /admin/users": () => json(200, [{ ...me }]),
      "PUT /admin/users/a1/role": () =>
        json(409, { error: { code: "conflict", message: "cannot change the role of root: it is the last active admin" } }),
    });
    const user = userEvent.setup();
    renderWithClient(<AdminPage tab="users" me={me} />);
    await user.selectOptions(await screen.findByLabelText("Role of root"), "user");
    expect(await screen.findByRole("alert")).toHaveTextContent("Cannot change the role of root: it is the last active admin");
  });

  it("filters the audit log and pages back with next_before", async () => {
    const { calls } = mockApi({
      "GET /admin/audit": (_init, url) => {
        if (url.searchParams.get("event") === "user.denied") return json(200, { entries: [entry(9, "user.denied")], next_before: null });
        if (url.searchParams.get("before") === "4") return json(200, { entries: [entry(3)], next_before: null });
        return json(200, { entries: [entry(5), entry(4)], next_before: 4 });
      },
    });
    const user = userEvent.setup();
    renderWithClient(<AdminPage tab="audit" me={me} />);
    expect(await screen.findAllByTestId("audit-row")).toHaveLength(2);
    await user.click(screen.getByRole("button", { name: "Older" }));
    await waitFor(() => expect(screen.getAllByTestId("audit-row")).toHaveLength(3));
    expect(screen.queryByRole("button", { name: "Older" })).toBeNull();

    await user.selectOptions(screen.getByLabelText("Event"), "user.denied");
    await user.type(screen.getByLabelText("User (name or id)"), "bob");
    await user.click(screen.getByRole("button", { name: "Filter" }));
    await waitFor(() => expect(screen.getAllByTestId("audit-row")).toHaveLength(1));
    const last = calls.at(-1)?.url.searchParams;
    expect(last?.get("event")).toBe("user.denied");
    expect(last?.get("user")).toBe("bob");
    expect(last?.get("limit")).toBe("50");
  });

  it("sends times as RFC 3339", () => {
    expect(localToRfc3339("")).toBeUndefined();
    expect(localToRfc3339("2026-01-31T12:00")).toMatch(/^2026-01-3\dT\d\d:00:00\.000Z$/);
  });
});
