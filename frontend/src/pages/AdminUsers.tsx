import { useState, type SubmitEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { changeUserState, setUserRole, type Role, type User, type UserAction } from "../api";
import { Alert, Badge, Button, Card, Dialog, ErrorAlert, SelectField, Spinner, TextField, formatTime } from "../components/ui";
import { listAccounts, resetPassword, stateLabel, unlockUser, type Account } from "../teamApi";

const STATE_TONE = { pending: "amber", active: "green", denied: "red", disabled: "gray" } as const;

/** Users: their state (a locked one as "locked (until HH:MM)"), role, and an admin's help. */
export function Users({ me }: { me: User }) {
  const client = useQueryClient();
  const users = useQuery({ queryKey: ["users", "all"], queryFn: () => listAccounts() });
  const [notice, setNotice] = useState<string | null>(null);
  const [resetting, setResetting] = useState<Account | null>(null);
  const done = (message: string) => {
    setNotice(message);
    return client.invalidateQueries({ queryKey: ["users"] });
  };
  const act = useMutation({
    mutationFn: ({ id, action }: { id: string; action: UserAction }) => changeUserState(id, action),
    onSuccess: (u, { action }) => done(`${u.username} is ${action === "disable" ? "disabled: their sessions ended" : action === "enable" ? "enabled again" : `${action}d`}.`),
  });
  const unlock = useMutation({
    mutationFn: (u: Account) => unlockUser(u.id),
    onSuccess: (u) => done(`${u.username} is unlocked and can sign in again.`),
  });
  const role = useMutation({
    mutationFn: ({ id, role }: { id: string; role: Role }) => setUserRole(id, role),
    onSettled: () => client.invalidateQueries({ queryKey: ["users"] }),
  });
  const busy = act.isPending || unlock.isPending;
  return (
    <Card aria-label="Users">
      {notice && (
        <Alert tone="success" className="mb-3">
          {notice}
        </Alert>
      )}
      <ErrorAlert error={act.error ?? role.error ?? unlock.error} className="mb-3" />
      {users.isPending && <Spinner label="Loading" />}
      <ErrorAlert error={users.error} />
      {users.data && (
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm">
            <thead className="text-xs uppercase tracking-wide text-slate-600 dark:text-slate-300">
              <tr>
                <th scope="col" className="py-2 pr-3 font-medium">User</th>
                <th scope="col" className="py-2 pr-3 font-medium">State</th>
                <th scope="col" className="hidden py-2 pr-3 font-medium md:table-cell">Registered</th>
                <th scope="col" className="py-2 text-right font-medium">Role and actions</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-200 dark:divide-slate-800">
              {users.data.map((u) => {
                const label = stateLabel(u);
                const locked = label.startsWith("locked");
                return (
                  <tr key={u.id} data-testid="user-row">
                    <td className="py-2 pr-3 font-medium">
                      {u.username}
                      {u.id === me.id && <span className="ml-1 text-xs font-normal text-slate-600 dark:text-slate-300">(you)</span>}
                    </td>
                    <td className="py-2 pr-3">
                      <Badge tone={locked ? "red" : STATE_TONE[u.state]}>{label}</Badge>
                    </td>
                    <td className="hidden whitespace-nowrap py-2 pr-3 md:table-cell">{formatTime(u.created_at)}</td>
                    <td className="py-2">
                      <div className="flex flex-wrap justify-end gap-2">
                        <RoleSelect account={u} busy={role.isPending} onChange={(r) => role.mutate({ id: u.id, role: r })} />
                        {locked && (
                          <Button size="sm" variant="primary" disabled={busy} aria-label={`Unlock ${u.username}`} onClick={() => unlock.mutate(u)}>
                            Unlock
                          </Button>
                        )}
                        {u.state === "active" && (
                          <Button size="sm" disabled={busy} aria-label={`Reset password of ${u.username}`} onClick={() => setResetting(u)}>
                            Reset password
                          </Button>
                        )}
                        {u.state === "active" && u.id !== me.id && (
                          <Button
                            size="sm"
                            variant="danger"
                            disabled={busy}
                            aria-label={`Disable ${u.username}`}
                            onClick={() => {
                              if (window.confirm(`Disable ${u.username}? Their sessions and API tokens end at once.`)) {
                                act.mutate({ id: u.id, action: "disable" });
                              }
                            }}
                          >
                            Disable
                          </Button>
                        )}
                        {u.state === "disabled" && (
                          <Button size="sm" disabled={busy} aria-label={`Enable ${u.username}`} onClick={() => act.mutate({ id: u.id, action: "enable" })}>
                            Enable
                          </Button>
                        )}
                        {(u.state === "pending" || u.state === "denied") && (
                          <Button size="sm" variant="primary" disabled={busy} aria-label={`Approve ${u.username}`} onClick={() => act.mutate({ id: u.id, action: "approve" })}>
                            Approve
                          </Button>
                        )}
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <ResetPasswordDialog
        account={resetting}
        onClose={() => setResetting(null)}
        onDone={(name) => {
          setResetting(null);
          return done(`${name} has a new password; their sessions ended. Tell them the password in person.`);
        }}
      />
    </Card>
  );
}

function RoleSelect({ account, busy, onChange }: { account: Account; busy: boolean; onChange: (role: Role) => void }) {
  return (
    <SelectField
      label={`Role of ${account.username}`}
      hideLabel
      value={account.role}
      disabled={busy}
      onChange={(e) => onChange(e.target.value as Role)}
      className="w-28"
    >
      <option value="user">user</option>
      <option value="admin">admin</option>
    </SelectField>
  );
}

function ResetPasswordDialog({
  account,
  onClose,
  onDone,
}: {
  account: Account | null;
  onClose: () => void;
  onDone: (name: string) => Promise<unknown>;
}) {
  const [password, setPassword] = useState("");
  const reset = useMutation({
    mutationFn: ({ id, password }: { id: string; password: string }) => resetPassword(id, password),
    onSuccess: async (u) => {
      setPassword("");
      await onDone(u.username);
    },
  });
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    if (account && password) reset.mutate({ id: account.id, password });
  };
  const close = () => {
    setPassword("");
    reset.reset();
    onClose();
  };
  return (
    <Dialog open={account !== null} onClose={close} title={`New password for ${account?.username ?? ""}`}>
      <form onSubmit={submit} className="space-y-3" aria-label="Reset password">
        <p className="text-sm text-slate-600 dark:text-slate-300">
          Their sessions and API tokens end, and any sign-in lock lifts. They can change the password on their
          Account page afterwards.
        </p>
        <ErrorAlert error={reset.error} />
        <TextField label="New password" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        <div className="flex justify-end gap-2">
          <Button onClick={close}>Cancel</Button>
          <Button type="submit" variant="primary" busy={reset.isPending} disabled={password === ""}>
            Set password
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
