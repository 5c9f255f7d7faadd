import { useState, type SubmitEvent } from "react";
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import {
  AUDIT_EVENTS,
  changeUserState,
  getAudit,
  listUsers,
  type AuditFilter,
  type User,
  type UserAction,
} from "../api";
import { Alert, Badge, Button, Card, ErrorAlert, PageTitle, SelectField, Spinner, TextField, cx, formatTime } from "../components/ui";
import { Link } from "../router";
import { Users } from "./AdminUsers";
import { RuntimeSettings } from "./AdminSettings";

export type AdminTab = "approvals" | "users" | "audit" | "settings";

const TABS: { id: AdminTab; label: string }[] = [
  { id: "approvals", label: "Pending approvals" },
  { id: "users", label: "Users" },
  { id: "audit", label: "Audit log" },
  { id: "settings", label: "Settings" },
];

export function AdminPage({ tab, me }: { tab: AdminTab; me: User }) {
  return (
    <div>
      <PageTitle>Administration</PageTitle>
      <nav aria-label="Administration" className="mb-4 flex flex-wrap gap-1 border-b border-slate-200 dark:border-slate-800">
        {TABS.map((t) => (
          <Link
            key={t.id}
            to={`/admin/${t.id}`}
            aria-current={t.id === tab ? "page" : undefined}
            className={cx(
              "-mb-px whitespace-nowrap border-b-2 px-3 py-2 text-sm font-medium",
              t.id === tab
                ? "border-indigo-600 text-indigo-800 dark:border-indigo-400 dark:text-indigo-200"
                : "border-transparent text-slate-600 hover:text-slate-900 dark:text-slate-300 dark:hover:text-white",
            )}
          >
            {t.label}
          </Link>
        ))}
      </nav>
      {tab === "approvals" && <Approvals />}
      {tab === "users" && <Users me={me} />}
      {tab === "audit" && <AuditLog />}
      {tab === "settings" && <RuntimeSettings />}
    </div>
  );
}

function useUserAction() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, action }: { id: string; action: UserAction }) => changeUserState(id, action),
    onSettled: () => client.invalidateQueries({ queryKey: ["users"] }),
  });
}

/** What an approval queue's action did, in a sentence. */
function outcome(u: User, action: UserAction): string {
  return action === "approve"
    ? `${u.username} is approved and can sign in now.`
    : `${u.username} was denied; they cannot sign in.`;
}

function Approvals() {
  const pending = useQuery({ queryKey: ["users", "pending"], queryFn: () => listUsers("pending") });
  const act = useUserAction();
  return (
    <Card aria-label="Pending approvals">
      {act.isSuccess && (
        <Alert tone="success" className="mb-3">
          {outcome(act.data, act.variables.action)}
        </Alert>
      )}
      <ErrorAlert error={act.error} className="mb-3" />
      {pending.isPending && <Spinner label="Loading" />}
      <ErrorAlert error={pending.error} />
      {pending.data?.length === 0 && (
        <p className="text-sm text-slate-500 dark:text-slate-400">Nobody is waiting for approval.</p>
      )}
      <ul className="divide-y divide-slate-200 dark:divide-slate-800">
        {pending.data?.map((u) => (
          <li key={u.id} className="flex flex-wrap items-center justify-between gap-2 py-2" data-testid="pending-user">
            <div>
              <p className="font-medium">{u.username}</p>
              <p className="text-xs text-slate-500 dark:text-slate-400">registered {formatTime(u.created_at)}</p>
            </div>
            <div className="flex gap-2">
              <Button
                size="sm"
                variant="primary"
                aria-label={`Approve ${u.username}`}
                busy={act.isPending && act.variables.id === u.id && act.variables.action === "approve"}
                disabled={act.isPending}
                onClick={() => act.mutate({ id: u.id, action: "approve" })}
              >
                Approve
              </Button>
              <Button
                size="sm"
                variant="danger"
                aria-label={`Deny ${u.username}`}
                busy={act.isPending && act.variables.id === u.id && act.variables.action === "deny"}
                disabled={act.isPending}
                onClick={() => act.mutate({ id: u.id, action: "deny" })}
              >
                Deny
              </Button>
            </div>
          </li>
        ))}
      </ul>
    </Card>
  );
}

/** `<input type="datetime-local">` gives local wall time; the API wants RFC 3339. */
export function localToRfc3339(value: string): string | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

const OUTCOME_TONE = { success: "green", failure: "red", denied: "amber" } as const;

function AuditLog() {
  const [form, setForm] = useState({ event: "", user: "", since: "", until: "" });
  const [filter, setFilter] = useState<AuditFilter>({});
  const audit = useInfiniteQuery({
    queryKey: ["audit", filter],
    queryFn: ({ pageParam, signal }) =>
      getAudit({ ...filter, limit: 50, ...(pageParam !== undefined ? { before: pageParam } : {}) }, signal),
    initialPageParam: undefined as number | undefined,
    getNextPageParam: (last) => last.next_before ?? undefined,
  });
  const apply = (e: SubmitEvent) => {
    e.preventDefault();
    const next: AuditFilter = {};
    if (form.event) next.event = form.event;
    if (form.user.trim()) next.user = form.user.trim();
    const since = localToRfc3339(form.since);
    const until = localToRfc3339(form.until);
    if (since) next.since = since;
    if (until) next.until = until;
    setFilter(next);
  };
  const entries = audit.data?.pages.flatMap((p) => p.entries) ?? [];
  return (
    <div className="space-y-4">
      <Card>
        <form onSubmit={apply} className="grid gap-3 sm:grid-cols-2 lg:grid-cols-[repeat(4,minmax(0,1fr))_auto] lg:items-end" aria-label="Audit filters">
          <SelectField label="Event" value={form.event} onChange={(e) => setForm({ ...form, event: e.target.value })}>
            <option value="">All events</option>
            {AUDIT_EVENTS.map((ev) => (
              <option key={ev} value={ev}>
                {ev}
              </option>
            ))}
          </SelectField>
          <TextField label="User (name or id)" value={form.user} onChange={(e) => setForm({ ...form, user: e.target.value })} />
          <TextField label="Since" type="datetime-local" value={form.since} onChange={(e) => setForm({ ...form, since: e.target.value })} />
          <TextField label="Until" type="datetime-local" value={form.until} onChange={(e) => setForm({ ...form, until: e.target.value })} />
          <div className="flex gap-2">
            <Button type="submit" variant="primary">
              Filter
            </Button>
            <Button
              onClick={() => {
                setForm({ event: "", user: "", since: "", until: "" });
                setFilter({});
              }}
            >
              Clear
            </Button>
          </div>
        </form>
      </Card>
      <Card aria-label="Audit entries">
        {audit.isPending && <Spinner label="Loading" />}
        <ErrorAlert error={audit.error} />
        {audit.isSuccess && entries.length === 0 && (
          <p className="text-sm text-slate-500 dark:text-slate-400">No entries match.</p>
        )}
        {entries.length > 0 && (
          // On a phone, one entry per block: seven columns do not fit 390 px.
          <ul className="divide-y divide-slate-200 sm:hidden dark:divide-slate-800" aria-label="Audit entries">
            {entries.map((e) => (
              <li key={e.id} data-testid="audit-item" className="space-y-0.5 py-2 text-sm">
                <div className="flex flex-wrap items-center gap-2">
                  <span className="font-mono text-xs">{e.event}</span>
                  <Badge tone={OUTCOME_TONE[e.outcome]}>{e.outcome}</Badge>
                </div>
                <p className="text-xs text-slate-600 dark:text-slate-300">
                  {formatTime(e.at)} · {e.actor_name ?? "—"}
                  {e.target_name && ` → ${e.target_name}`}
                </p>
                {e.detail && <p className="break-words text-xs text-slate-600 dark:text-slate-300">{e.detail}</p>}
              </li>
            ))}
          </ul>
        )}
        {entries.length > 0 && (
          <div className="hidden overflow-x-auto sm:block">
            <table className="w-full text-left text-sm">
              <thead className="text-xs uppercase tracking-wide text-slate-500 dark:text-slate-400">
                <tr>
                  <th scope="col" className="py-2 pr-3 font-medium">Time</th>
                  <th scope="col" className="py-2 pr-3 font-medium">Event</th>
                  <th scope="col" className="py-2 pr-3 font-medium">Outcome</th>
                  <th scope="col" className="py-2 pr-3 font-medium">Actor</th>
                  <th scope="col" className="py-2 pr-3 font-medium">Target</th>
                  <th scope="col" className="hidden py-2 pr-3 font-medium lg:table-cell">Address</th>
                  <th scope="col" className="py-2 font-medium">Detail</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-200 dark:divide-slate-800">
                {entries.map((e) => (
                  <tr key={e.id} data-testid="audit-row">
                    <td className="whitespace-nowrap py-1.5 pr-3">{formatTime(e.at)}</td>
                    <td className="whitespace-nowrap py-1.5 pr-3 font-mono text-xs">{e.event}</td>
                    <td className="py-1.5 pr-3">
                      <Badge tone={OUTCOME_TONE[e.outcome]}>{e.outcome}</Badge>
                    </td>
                    <td className="py-1.5 pr-3">{e.actor_name ?? "—"}</td>
                    <td className="py-1.5 pr-3">{e.target_name ?? "—"}</td>
                    <td className="hidden py-1.5 pr-3 lg:table-cell">{e.client_addr ?? "—"}</td>
                    <td className="py-1.5 text-xs text-slate-600 dark:text-slate-300">{e.detail ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {audit.hasNextPage && (
          <div className="mt-3">
            <Button onClick={() => void audit.fetchNextPage()} busy={audit.isFetchingNextPage}>
              Older
            </Button>
          </div>
        )}
      </Card>
    </div>
  );
}
