/** What a conversation searches: every collection the user can read, or the ones chosen. Kept
 * with the conversation (the server's `collection_ids`) and shown above it. */

import { useId, useState } from "react";
import type { Collection } from "../../api";
import { ErrorAlert } from "../../components/ui";

export function scopeLabel(selected: string[], collections: Collection[]): string {
  if (selected.length === 0) return "all your documents";
  const names = selected.map((id) => collections.find((c) => c.id === id)?.name ?? "a collection you no longer see");
  return names.join(", ");
}

export function ScopePicker({
  collections,
  selected,
  onChange,
  busy,
  error,
}: {
  collections: Collection[];
  selected: string[];
  onChange: (ids: string[]) => void;
  busy: boolean;
  error: unknown;
}) {
  const [open, setOpen] = useState(false);
  const panel = useId();
  const toggle = (id: string, on: boolean) => {
    const next = on ? [...selected, id] : selected.filter((s) => s !== id);
    onChange(collections.filter((c) => next.includes(c.id)).map((c) => c.id));
  };
  return (
    <div className="mb-3 text-sm">
      <p className="flex flex-wrap items-center gap-x-2 gap-y-1">
        <span className="min-w-0 break-words" data-testid="scope">
          <span className="text-slate-600 dark:text-slate-400">Searching </span>
          <span className="font-medium">{scopeLabel(selected, collections)}</span>
        </span>
        <button
          type="button"
          aria-expanded={open}
          aria-controls={panel}
          onClick={() => setOpen((o) => !o)}
          className="rounded-md border border-slate-300 px-2 py-0.5 text-xs font-medium hover:bg-slate-100 dark:border-slate-600 dark:hover:bg-slate-800"
        >
          {open ? "Done" : "Choose what to search"}
        </button>
      </p>
      {open && (
        <fieldset
          id={panel}
          disabled={busy}
          className="mt-2 max-w-full rounded-md border border-slate-200 bg-white p-3 dark:border-slate-700 dark:bg-slate-900"
        >
          <legend className="px-1 text-xs font-semibold uppercase tracking-wide text-slate-600 dark:text-slate-400">
            Collections to search
          </legend>
          {collections.length === 0 && (
            <p className="text-slate-600 dark:text-slate-400">You have no collections yet.</p>
          )}
          <label className="flex items-center gap-2 py-0.5">
            <input
              type="checkbox"
              className="h-4 w-4 accent-indigo-600"
              checked={selected.length === 0}
              onChange={(e) => {
                if (e.target.checked) onChange([]);
              }}
            />
            All your documents
          </label>
          {collections.map((c) => (
            <label key={c.id} className="flex min-w-0 items-center gap-2 py-0.5">
              <input
                type="checkbox"
                className="h-4 w-4 shrink-0 accent-indigo-600"
                checked={selected.includes(c.id)}
                onChange={(e) => toggle(c.id, e.target.checked)}
              />
              <span className="truncate">{c.name}</span>
              <span className="shrink-0 text-xs text-slate-600 dark:text-slate-400">
                {c.document_count} {c.document_count === 1 ? "document" : "documents"}
              </span>
            </label>
          ))}
          <ErrorAlert error={error} className="mt-2" />
        </fieldset>
      )}
    </div>
  );
}
