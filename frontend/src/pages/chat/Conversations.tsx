/** The list of conversations, searchable by title: a column beside the chat on wide screens, a
 * drawer over it on phones. */

import { useEffect, useRef, useState } from "react";
import type { UseQueryResult } from "@tanstack/react-query";
import type { Conversation } from "../../api";
import { Button, ErrorAlert, Spinner, cx } from "../../components/ui";
import { Link } from "../../router";

export function ConversationList({
  conversations,
  currentId,
  open,
  onClose,
  onNew,
}: {
  conversations: UseQueryResult<Conversation[]>;
  currentId: string | undefined;
  /** On phones: whether the drawer shows. */
  open: boolean;
  onClose: () => void;
  onNew: () => void;
}) {
  const [query, setQuery] = useState("");
  const searchRef = useRef<HTMLInputElement>(null);
  const all = conversations.data ?? [];
  const wanted = query.trim().toLowerCase();
  const shown = wanted ? all.filter((c) => (c.title || "Untitled").toLowerCase().includes(wanted)) : all;

  // The drawer takes focus when it opens, and Escape closes it.
  useEffect(() => {
    if (!open) return;
    searchRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [open, onClose]);

  return (
    <>
      {open && (
        <div aria-hidden="true" className="fixed inset-0 z-30 bg-slate-900/50 md:hidden" onClick={onClose} />
      )}
      <aside
        id="conversation-drawer"
        aria-label="Conversations"
        className={cx(
          "space-y-3",
          // Phones: a drawer from the left, shown only when opened. Wider: a column.
          open
            ? "fixed inset-y-0 left-0 z-40 w-[min(20rem,85vw)] overflow-y-auto bg-white p-4 shadow-xl dark:bg-slate-900"
            : "hidden",
          "md:static md:z-auto md:block md:w-auto md:overflow-visible md:bg-transparent md:p-0 md:shadow-none md:dark:bg-transparent",
        )}
      >
        <div className="flex items-center gap-2">
          <Button variant="primary" className="flex-1" onClick={onNew}>
            New conversation
          </Button>
          <Button variant="ghost" className="md:hidden" onClick={onClose} aria-label="Close the conversation list">
            ✕
          </Button>
        </div>
        <div>
          <label htmlFor="conversation-search" className="sr-only">
            Search conversations
          </label>
          <input
            ref={searchRef}
            id="conversation-search"
            type="search"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            placeholder="Search conversations"
            className="block w-full rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm dark:border-slate-600 dark:bg-slate-900"
          />
        </div>
        <nav aria-label="Conversation list">
          {conversations.isPending && <Spinner label="Loading conversations" />}
          <ErrorAlert error={conversations.error} />
          {conversations.data?.length === 0 && (
            <p className="text-sm text-slate-600 dark:text-slate-400">No conversations yet.</p>
          )}
          {all.length > 0 && shown.length === 0 && (
            <p className="text-sm text-slate-600 dark:text-slate-400">No conversation title contains “{query.trim()}”.</p>
          )}
          <ul className="space-y-1">
            {shown.map((c) => (
              <li key={c.id}>
                <Link
                  to={`/chat/${encodeURIComponent(c.id)}`}
                  onClick={onClose}
                  aria-current={c.id === currentId ? "page" : undefined}
                  className={cx(
                    "block truncate rounded-md px-3 py-2 text-sm",
                    c.id === currentId
                      ? "bg-indigo-100 font-medium text-indigo-900 dark:bg-indigo-950 dark:text-indigo-100"
                      : "hover:bg-slate-200 dark:hover:bg-slate-800",
                  )}
                >
                  {c.title || "Untitled"}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      </aside>
    </>
  );
}
