/** One exchange of a conversation: the question, the answer (Markdown, with source chips and
 * the actions on it), and the cited passage's dialog. */

import { useEffect, useRef, useState, type ReactNode } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { documentFileUrl, getChunk, setFeedback, type Citation, type Message, type Vote } from "../../api";
import { Alert, Badge, Dialog, ErrorAlert, Spinner, cx } from "../../components/ui";
import { CopyButton, Markdown } from "../../markdown";
import { Link } from "../../router";

const ACTION =
  "inline-flex min-h-8 items-center gap-1 rounded-md px-2 py-1 text-xs font-medium text-slate-600 hover:bg-slate-100 disabled:opacity-50 dark:text-slate-300 dark:hover:bg-slate-800";

export function UserBubble({ children, onEdit }: { children: ReactNode; onEdit?: () => void }) {
  return (
    <div className="flex flex-col items-end gap-1">
      <div className="max-w-[85%] whitespace-pre-wrap break-words rounded-lg bg-indigo-600 px-4 py-2 text-sm text-white dark:bg-indigo-500">
        <span className="sr-only">You: </span>
        {children}
      </div>
      {onEdit && (
        <button type="button" className={ACTION} onClick={onEdit}>
          Edit and resend
        </button>
      )}
    </div>
  );
}

export function CitationChip({ citation, onOpen }: { citation: Citation; onOpen: (c: Citation) => void }) {
  return (
    <button
      type="button"
      onClick={() => onOpen(citation)}
      aria-label={`Source ${citation.n}: ${citation.document_name}`}
      title={citation.document_name}
      className="mx-0.5 inline-flex h-5 min-w-5 items-center justify-center rounded-full bg-indigo-100 px-1.5 align-text-top text-xs font-semibold text-indigo-800 hover:bg-indigo-200 dark:bg-indigo-900 dark:text-indigo-100 dark:hover:bg-indigo-800"
    >
      {citation.n}
    </button>
  );
}

/** The answer's Markdown with its `[n]` markers turned into source chips, wherever they stand. */
export function AnswerText({ content, citations, onCite }: { content: string; citations: Citation[]; onCite: (c: Citation) => void }) {
  const byNumber = new Map(citations.map((c) => [c.n, c]));
  const withChips = (text: string, key: string): ReactNode => {
    const parts: ReactNode[] = [];
    let last = 0;
    for (const match of text.matchAll(/\[(\d+)\]/g)) {
      const citation = byNumber.get(Number(match[1]));
      if (!citation) continue;
      parts.push(text.slice(last, match.index));
      parts.push(<CitationChip key={`${key}.${match.index}`} citation={citation} onOpen={onCite} />);
      last = match.index + match[0].length;
    }
    if (parts.length === 0) return text;
    parts.push(text.slice(last));
    return <span key={key}>{parts}</span>;
  };
  return <Markdown text={content} renderText={withChips} />;
}

/** Where a citation opens in the document viewer (the passage highlighted there). */
export function documentHref(c: Citation): string {
  return `/documents/${encodeURIComponent(c.document_id)}?passage=${encodeURIComponent(String(c.chunk_id))}`;
}

export function AssistantBubble({
  message,
  content,
  citations,
  mode,
  onCite,
  streaming = false,
  conversationId,
  onRegenerate,
}: {
  message?: Message;
  content: string;
  citations: Citation[];
  mode?: Message["mode"];
  onCite: (c: Citation) => void;
  streaming?: boolean;
  /** With `message`: the stored answer's actions (copy, feedback), in this conversation. */
  conversationId?: string;
  /** Asks this answer's question again. */
  onRegenerate?: (() => void) | undefined;
}) {
  return (
    <article
      aria-label="Answer"
      data-testid="answer"
      className="w-full max-w-[92%] min-w-0 rounded-lg border border-slate-200 bg-white px-4 py-3 text-sm shadow-sm dark:border-slate-800 dark:bg-slate-900"
    >
      {mode === "extractive" && (
        // The answer's own first line says why (no language model): the badge does not repeat it.
        <p className="mb-2">
          <Badge tone="amber">Extractive</Badge>
        </p>
      )}
      <div className="break-words leading-relaxed" data-testid="answer-text">
        <AnswerText content={content} citations={citations} onCite={onCite} />
        {streaming && content === "" && <Spinner small label="Thinking" />}
        {streaming && content !== "" && (
          <span aria-hidden="true" className="ml-0.5 inline-block h-4 w-1.5 animate-pulse bg-slate-400 align-text-bottom" />
        )}
      </div>
      {citations.length > 0 && (
        <div className="mt-3 border-t border-slate-200 pt-2 dark:border-slate-800">
          <h2 className="mb-1 text-xs font-semibold uppercase tracking-wide text-slate-600 dark:text-slate-400">Sources</h2>
          <ol className="flex flex-wrap gap-2">
            {citations.map((c) => (
              <li key={`${c.n}-${c.chunk_id}`} className="min-w-0 max-w-full">
                <button
                  type="button"
                  onClick={() => onCite(c)}
                  className="inline-flex max-w-full items-center gap-1.5 rounded-full border border-slate-300 px-2 py-0.5 text-xs hover:bg-slate-100 sm:max-w-64 dark:border-slate-700 dark:hover:bg-slate-800"
                >
                  <span className="font-semibold text-indigo-700 dark:text-indigo-300">{c.n}</span>
                  <span className="truncate">{c.document_name}</span>
                </button>
              </li>
            ))}
          </ol>
        </div>
      )}
      {message && conversationId && (
        <ActionBar message={message} conversationId={conversationId} onRegenerate={onRegenerate} />
      )}
    </article>
  );
}

const THUMB_UP = "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
const THUMB_DOWN = "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17";

function ActionBar({
  message,
  conversationId,
  onRegenerate,
}: {
  message: Message;
  conversationId: string;
  onRegenerate: (() => void) | undefined;
}) {
  const client = useQueryClient();
  const [vote, setVote] = useState<Vote | null>(message.feedback ?? null);
  const feedback = useMutation({
    mutationFn: (next: Vote | null) => setFeedback(conversationId, message.id, next),
    onMutate: (next) => {
      const before = vote;
      setVote(next);
      return before;
    },
    onError: (_err, _next, before) => setVote(before ?? null),
    onSuccess: () => void client.invalidateQueries({ queryKey: ["conversation", conversationId] }),
  });
  const thumb = (which: Vote, label: string, path: string) => (
    <button
      type="button"
      className={cx(ACTION, vote === which && "bg-indigo-100 text-indigo-900 dark:bg-indigo-950 dark:text-indigo-100")}
      aria-pressed={vote === which}
      aria-label={label}
      title={label}
      disabled={feedback.isPending}
      onClick={() => feedback.mutate(vote === which ? null : which)}
    >
      {/* Drawn, not an emoji: not every system has an emoji font (Feather's thumbs, MIT). */}
      <svg aria-hidden="true" viewBox="0 0 24 24" className="h-4 w-4" fill="none" stroke="currentColor" strokeWidth={2} strokeLinecap="round" strokeLinejoin="round">
        <path d={path} />
      </svg>
    </button>
  );
  return (
    <div className="mt-2 border-t border-slate-200 pt-2 dark:border-slate-800">
      <div className="flex flex-wrap items-center gap-1" role="group" aria-label="Answer actions">
        <CopyButton text={message.content} what="answer" className={ACTION} />
        {onRegenerate && (
          <button type="button" className={ACTION} onClick={onRegenerate}>
            Regenerate
          </button>
        )}
        {thumb("up", "Good answer", THUMB_UP)}
        {thumb("down", "Bad answer", THUMB_DOWN)}
        {vote && (
          <span role="status" className="text-xs text-slate-600 dark:text-slate-400">
            Thanks for the feedback.
          </span>
        )}
      </div>
      {feedback.error !== null && (
        <Alert tone="error" className="mt-2">
          Your vote was not saved: try again.
        </Alert>
      )}
    </div>
  );
}

/** A cited passage in the context of its document. */
export function PassageDialog({ citation, onClose }: { citation: Citation | null; onClose: () => void }) {
  const chunk = useQuery({
    queryKey: ["chunk", citation?.chunk_id],
    queryFn: ({ signal }) => getChunk(citation?.chunk_id ?? 0, signal),
    enabled: citation !== null,
    staleTime: Infinity,
  });
  const markRef = useRef<HTMLElement>(null);
  useEffect(() => {
    markRef.current?.scrollIntoView({ block: "center" });
  }, [chunk.data]);
  const title = citation ? `Source ${citation.n}: ${citation.document_name}` : "Source";
  return (
    <Dialog open={citation !== null} onClose={onClose} title={title}>
      {chunk.isPending && <Spinner label="Loading the passage" />}
      <ErrorAlert error={chunk.error} />
      {chunk.error !== null && citation && (
        <Alert tone="info" className="mt-2">
          <p className="whitespace-pre-wrap">{citation.text}</p>
        </Alert>
      )}
      {chunk.data && (
        <>
          <p className="mb-2 text-xs text-slate-600 dark:text-slate-400">
            Passage {chunk.data.ordinal + 1} of {chunk.data.document_name}, characters {chunk.data.start}–{chunk.data.end}
          </p>
          <div
            tabIndex={0}
            className="max-h-[60vh] overflow-y-auto whitespace-pre-wrap break-words rounded-md bg-slate-50 p-3 text-sm leading-relaxed text-slate-700 dark:bg-slate-950 dark:text-slate-300"
            data-testid="passage"
          >
            {chunk.data.before && <span>{chunk.data.before}</span>}
            <mark ref={markRef} className="rounded bg-amber-200 px-0.5 text-slate-900 dark:bg-amber-700 dark:text-white">
              {chunk.data.text}
            </mark>
            {chunk.data.after && <span>{chunk.data.after}</span>}
          </div>
        </>
      )}
      {citation && (
        <p className="mt-3 flex flex-wrap gap-x-4 gap-y-1 text-sm">
          <Link to={documentHref(citation)} onClick={onClose} className="font-medium text-indigo-700 underline dark:text-indigo-300">
            Open in document
          </Link>
          <a
            href={documentFileUrl(citation.document_id)}
            className="font-medium text-indigo-700 underline dark:text-indigo-300"
            download
          >
            Download the original document
          </a>
        </p>
      )}
    </Dialog>
  );
}
