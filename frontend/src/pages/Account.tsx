import { useState, type SubmitEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { changePassword, createToken, listTokens, revokeToken, type CreatedToken, type User } from "../api";
import { Alert, Badge, Button, Card, ErrorAlert, PageTitle, Spinner, TextField, formatTime } from "../components/ui";
import { navigate } from "../router";
import { SESSION_KEY } from "../session";
import { PasswordRules } from "./Auth";

export function AccountPage({ user }: { user: User }) {
  return (
    <div className="space-y-6">
      <PageTitle>Your account</PageTitle>
      <p className="text-sm text-slate-600 dark:text-slate-300">
        Signed in as <strong>{user.username}</strong> ({user.role}).
      </p>
      <div className="grid gap-6 lg:grid-cols-2">
        <PasswordForm />
        <Tokens />
      </div>
    </div>
  );
}

function PasswordForm() {
  const client = useQueryClient();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [mismatch, setMismatch] = useState(false);
  const change = useMutation({
    mutationFn: () => changePassword(current, next),
    onSuccess: () => {
      // Every session ended, this one too: sign in again.
      client.clear();
      client.setQueryData(SESSION_KEY, null);
      navigate("/sign-in?notice=password-changed", { replace: true });
    },
  });
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    if (next !== confirm) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    change.mutate();
  };
  return (
    <Card aria-label="Change password">
      <h2 className="mb-3 text-lg font-semibold">Change password</h2>
      <form onSubmit={submit} className="space-y-4" noValidate>
        <ErrorAlert error={change.error} />
        <TextField label="Current password" type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
        <TextField label="New password" type="password" autoComplete="new-password" required value={next} onChange={(e) => setNext(e.target.value)} hint={<PasswordRules />} />
        <TextField
          label="Repeat the new password"
          type="password"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          error={mismatch ? "The two passwords differ." : undefined}
        />
        <p className="text-xs text-slate-500 dark:text-slate-400">
          Changing it signs you out everywhere and revokes your API tokens.
        </p>
        <Button type="submit" variant="primary" busy={change.isPending}>
          Change password
        </Button>
      </form>
    </Card>
  );
}

function Tokens() {
  const client = useQueryClient();
  const tokens = useQuery({ queryKey: ["tokens"], queryFn: listTokens });
  const [name, setName] = useState("");
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const [copied, setCopied] = useState(false);
  const create = useMutation({
    mutationFn: () => createToken(name.trim()),
    onSuccess: async (token) => {
      setCreated(token);
      setCopied(false);
      setName("");
      await client.invalidateQueries({ queryKey: ["tokens"] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => revokeToken(id),
    onSettled: () => client.invalidateQueries({ queryKey: ["tokens"] }),
  });
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const copy = async () => {
    if (!created) return;
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };
  return (
    <Card aria-label="API tokens">
      <h2 className="mb-1 text-lg font-semibold">API tokens</h2>
      <p className="mb-3 text-sm text-slate-600 dark:text-slate-300">
        For scripts: send a token as <code className="text-xs">Authorization: Bearer …</code>.
      </p>
      <form onSubmit={submit} className="flex flex-wrap items-end gap-2" noValidate>
        <TextField label="Token name" className="min-w-48 flex-1" value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. backup script" maxLength={100} />
        <Button type="submit" variant="primary" busy={create.isPending}>
          Create token
        </Button>
      </form>
      <ErrorAlert error={create.error} className="mt-3" />
      {created && (
        <Alert tone="success" title={`Token “${created.name}” created`} className="mt-3">
          <p>Copy it now: it is shown this once.</p>
          <div className="mt-2 flex flex-wrap items-center gap-2">
            <code data-testid="new-token" className="break-all rounded bg-white px-2 py-1 font-mono text-xs text-slate-900 dark:bg-slate-900 dark:text-slate-100">
              {created.token}
            </code>
            <Button size="sm" onClick={() => void copy()}>
              {copied ? "Copied" : "Copy"}
            </Button>
            <Button size="sm" variant="ghost" onClick={() => setCreated(null)}>
              Done
            </Button>
          </div>
        </Alert>
      )}
      <ErrorAlert error={revoke.error} className="mt-3" />
      <div className="mt-4">
        {tokens.isPending && <Spinner label="Loading tokens" />}
        <ErrorAlert error={tokens.error} />
        {tokens.data?.length === 0 && <p className="text-sm text-slate-500 dark:text-slate-400">No tokens yet.</p>}
        <ul className="divide-y divide-slate-200 dark:divide-slate-800">
          {tokens.data?.map((t) => (
            <li key={t.id} className="flex flex-wrap items-center justify-between gap-2 py-2 text-sm" data-testid="token-row">
              <div className="min-w-0">
                <p className="font-medium">
                  {t.name} {t.revoked_at && <Badge tone="gray">revoked</Badge>}
                </p>
                <p className="text-xs text-slate-500 dark:text-slate-400">
                  <code>{t.prefix}…</code> · created {formatTime(t.created_at)} · last used {formatTime(t.last_used_at)}
                </p>
              </div>
              {!t.revoked_at && (
                <Button
                  size="sm"
                  variant="danger"
                  aria-label={`Revoke ${t.name}`}
                  busy={revoke.isPending && revoke.variables === t.id}
                  onClick={() => revoke.mutate(t.id)}
                >
                  Revoke
                </Button>
              )}
            </li>
          ))}
        </ul>
      </div>
    </Card>
  );
}
