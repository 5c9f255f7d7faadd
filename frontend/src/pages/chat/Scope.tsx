/** What a conversation searches: every collection the user can read, the collections chosen,
 * or chosen documents. Kept with the conversation (the server's `collection_ids` and
 * `document_ids`) and shown above it. */

import { useId, useState } from "react";
import { useQueries } from "@tanstack/react-query";
import { listDocuments, type Collection, type DocumentInfo } from "../../api";
import { ErrorAlert } from "../../components/ui";

export interface Scope {
  collections: string[];
  /** When not empty, these documents (not the collections) are searched. */
  documents: string[];
}

export function scopeLabel(scope: Scope, collections: Collection[], documents: DocumentInfo[]): string {
  if (scope.documents.length > 0) {
    return scope.documents.map((id) => documents.find((d) => d.id === id)?.filename ?? "a document").join(", ");
  }
  if (scope.collections.length === 0) return "all your documents";
  const names = scope.collections.map((id) => collections.find((c) => c.id === id)?.name ?? "a collection you no longer see");
  return names.join(", ");
}

export function ScopePicker({
  collections,
  scope,
  onChange,
  busy,
  error,
}: {
  collections: Collection[];
  scope: Scope;
  onChange: (scope: Scope) => void;
  busy: boolean;
  error: unknown;
}) {
  const [open, setOpen] = useState(false);
  const panel = useId();
  // Each collection's documents: to choose among when open, and to name the chosen ones.
  const lists = useQueries({
    queries: collections.map((c) => ({
      queryKey: ["documents", c.id],
      queryFn: () => listDocuments(c.id),
      enabled: open || scope.documents.length > 0,
    })),
  });
  const documents = lists.flatMap((l) => l.data ?? []);
  const toggleCollection = (id: string, on: boolean) => {
    const next = on ? [...scope.collections, id] : scope.collections.filter((s) => s !== id);
    onChange({ collections: collections.filter((c) => next.includes(c.id)).map((c) => c.id), documents: [] });
  };
  const toggleDocument = (id: string, on: boolean) => {
    const next = on ? [...scope.documents, id] : scope.documents.filter((s) => s !== id);
    onChange({ collections: [], documents: documents.filter((d) => next.includes(d.id)).map((d) => d.id) });
  };
  const all = scope.collections.length === 0 && scope.documents.length === 0;
  return (
    <div className="mb-3 text-sm">
      <p className="flex flex-wrap items-center gap-x-2 gap-y-1">
        <span className="min-w-0 break-words" data-testid="scope">
          <span className="text-slate-600 dark:text-slate-400">Searching </span>
          <span className="font-medium">{scopeLabel(scope, collections, documents)}</span>
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
          className="mt-2 max-h-80 max-w-full overflow-y-auto rounded-md border border-slate-200 bg-white p-3 dark:border-slate-700 dark:bg-slate-900"
        >
          <legend className="px-1 text-xs font-semibold uppercase tracking-wide text-slate-600 dark:text-slate-400">
            Collections and documents to search
          </legend>
          {collections.length === 0 && (
            <p className="text-slate-600 dark:text-slate-400">You have no collections yet.</p>
          )}
          <label className="flex items-center gap-2 py-0.5">
            <input
              type="checkbox"
              className="h-4 w-4 accent-indigo-600"
              checked={all}
              onChange={(e) => {
                if (e.target.checked) onChange({ collections: [], documents: [] });
              }}
            />
            All your documents
          </label>
          {collections.map((c, i) => (
            <div key={c.id}>
              <label className="flex min-w-0 items-center gap-2 py-0.5">
                <input
                  type="checkbox"
                  className="h-4 w-4 shrink-0 accent-indigo-600"
                  checked={scope.collections.includes(c.id)}
                  onChange={(e) => toggleCollection(c.id, e.target.checked)}
                />
                <span className="truncate">{c.name}</span>
                <span className="shrink-0 text-xs text-slate-600 dark:text-slate-400">
                  {c.document_count} {c.document_count === 1 ? "document" : "documents"}
                </span>
              </label>
              <ul aria-label={`Documents of ${c.name}`} className="ml-6">
                {(lists[i]?.data ?? []).map((d) => (
                  <li key={d.id}>
                    <label className="flex min-w-0 items-center gap-2 py-0.5 text-xs">
                      <input
                        type="checkbox"
                        className="h-3.5 w-3.5 shrink-0 accent-indigo-600"
                        checked={scope.documents.includes(d.id)}
                        onChange={(e) => toggleDocument(d.id, e.target.checked)}
                      />
                      <span className="truncate">{d.filename}</span>
                    </label>
                  </li>
                ))}
              </ul>
            </div>
          ))}
          <ErrorAlert error={error} className="mt-2" />
        </fieldset>
      )}
    </div>
  );
}
