import { useQuery } from "@tanstack/react-query";
import { listUsers } from "../api";

/** How often an admin's navigation re-counts accounts waiting for approval. */
const RECOUNT_MS = 30_000;

/** The number of accounts waiting for approval, for admins' navigation; nothing at zero. */
export function PendingBadge() {
  // The approval queue's own query key: approving there updates this count at once.
  const pending = useQuery({
    queryKey: ["users", "pending"],
    queryFn: () => listUsers("pending"),
    refetchInterval: RECOUNT_MS,
  });
  const n = pending.data?.length ?? 0;
  if (n === 0) return null;
  return (
    <span
      data-testid="pending-badge"
      className="ml-1.5 inline-flex min-w-5 items-center justify-center rounded-full bg-amber-600 px-1.5 text-xs font-semibold text-white dark:bg-amber-500 dark:text-slate-950"
    >
      {n}
      <span className="sr-only"> {n === 1 ? "account waits" : "accounts wait"} for approval</span>
    </span>
  );
}
