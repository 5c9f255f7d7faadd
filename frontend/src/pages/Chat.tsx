import { useEffect, useRef, useState, type SubmitEvent, type KeyboardEvent, type ReactNode } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import {
  createConversation,
  deleteConversation,
  documentFileUrl,
  getChunk,
  getConversation,
  isAbort,
  listConversations,
  streamMessage,
  type Citation,
  type Message,
} from "../api";
import { Alert, Badge, Button, Dialog, ErrorAlert, PageTitle, Spinner, cx } from "../components/ui";
import { Link, navigate } from "../router";

/** The answer being streamed, shown until the stored conversation has it. */
interface Pending {
  conversationId: string;
  /** How many stored messages the conversation had when the question was sent. */
  base: number;
  question: string;
  citations: Citation[];
  text: string;
  state: "streaming" | "saving" | "failed";
  error?: unknown;
}

export function ChatPage({ conversationId }: { conversationId?: string }) {
  const client = useQueryClient();
  const conversations = useQuery({ queryKey: ["conversations"], queryFn: listConversations });
  const conversation = useQuery({
    queryKey: ["conversation", conversationId],
    queryFn: () => getConversation(conversationId ?? ""),
    enabled: conversationId !== undefined,
  });
  const [pending, setPending] = useState<Pending | null>(null);
  const [openCitation, setOpenCitation] = useState<Citation | null>(null);
  const abortRef = useRef<AbortController | null>(null);
  const endRef = useRef<HTMLDivElement>(null);

  // For the time-to-first-render measurement of the browser tests (performance.mark is free).
  const ready = conversations.isSuccess;
  useEffect(() => {
    if (ready && performance.getEntriesByName("berth:chat-ready").length === 0) {
      performance.mark("berth:chat-ready");
    }
  }, [ready]);

  useEffect(() => () => abortRef.current?.abort(), []);

  useEffect(() => {
    endRef.current?.scrollIntoView({ block: "end" });
  }, [pending?.text, pending?.citations.length, conversation.data?.messages.length]);

  const newConversation = useMutation({
    mutationFn: () => createConversation({}),
    onSuccess: async (created) => {
      await client.invalidateQueries({ queryKey: ["conversations"] });
      navigate(`/chat/${encodeURIComponent(created.id)}`);
    },
  });

  const remove = useMutation({
    mutationFn: (id: string) => deleteConversation(id),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ["conversations"] });
      navigate("/chat");
    },
  });

  const streaming = pending?.state === "streaming" || pending?.state === "saving";

  const ask = async (question: string) => {
    let id = conversationId;
    const controller = new AbortController();
    abortRef.current = controller;
    try {
      if (id === undefined) {
        // The server titles a new conversation after its first question.
        const created = await createConversation({});
        id = created.id;
        void client.invalidateQueries({ queryKey: ["conversations"] });
        navigate(`/chat/${encodeURIComponent(id)}`, { replace: true });
      }
      const target = id;
      const base = id === conversationId ? (conversation.data?.messages.length ?? 0) : 0;
      setPending({ conversationId: target, base, question, citations: [], text: "", state: "streaming" });
      await streamMessage(
        target,
        question,
        {
          onSources: (citations) => setPending((p) => (p ? { ...p, citations } : p)),
          onToken: (text) => setPending((p) => (p ? { ...p, text: p.text + text } : p)),
        },
        controller.signal,
      );
      setPending((p) => (p ? { ...p, state: "saving" } : p));
      await Promise.all([
        client.invalidateQueries({ queryKey: ["conversation", target] }),
        client.invalidateQueries({ queryKey: ["conversations"] }),
      ]);
      setPending(null);
    } catch (err) {
      if (id !== undefined) void client.invalidateQueries({ queryKey: ["conversation", id] });
      if (isAbort(err)) {
        setPending(null);
        return;
      }
      setPending((p) =>
        p
          ? { ...p, state: "failed", error: err }
          : { conversationId: id ?? "", base: 0, question, citations: [], text: "", state: "failed", error: err },
      );
    } finally {
      if (abortRef.current === controller) abortRef.current = null;
    }
  };

  // While a question is pending, show the conversation as it was when it was sent: the server
  // stores the question (and then the answer) while the answer streams. Once the stored
  // conversation has both, it replaces the pending one.
  const stored = conversation.data?.messages ?? [];
  const mine = pending && (pending.conversationId === conversationId || conversationId === undefined) ? pending : null;
  const shownPending = mine && !(mine.state !== "failed" && stored.length >= mine.base + 2) ? mine : null;
  const messages = shownPending ? stored.slice(0, shownPending.base) : stored;
  const title = conversationId ? (conversation.data?.title ?? "Conversation") : "New conversation";

  return (
    <div className="grid gap-6 md:grid-cols-[16rem_1fr]">
      <aside aria-label="Conversations" className="space-y-3">
        <Button
          variant="primary"
          className="w-full"
          onClick={() => newConversation.mutate()}
          busy={newConversation.isPending}
        >
          New conversation
        </Button>
        <ErrorAlert error={newConversation.error} />
        <nav aria-label="Conversation list">
          {conversations.isPending && <Spinner label="Loading conversations" />}
          <ErrorAlert error={conversations.error} />
          {conversations.data?.length === 0 && (
            <p className="text-sm text-slate-500 dark:text-slate-400">No conversations yet.</p>
          )}
          <ul className="space-y-1">
            {conversations.data?.map((c) => (
              <li key={c.id}>
                <Link
                  to={`/chat/${encodeURIComponent(c.id)}`}
                  aria-current={c.id === conversationId ? "page" : undefined}
                  className={cx(
                    "block truncate rounded-md px-3 py-2 text-sm",
                    c.id === conversationId
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

      <section aria-label="Conversation" className="flex min-h-[60vh] flex-col">
        <PageTitle
          actions={
            conversationId && (
              <Button
                variant="danger"
                size="sm"
                busy={remove.isPending}
                disabled={streaming}
                onClick={() => {
                  if (window.confirm("Delete this conversation?")) remove.mutate(conversationId);
                }}
              >
                Delete conversation
              </Button>
            )
          }
        >
          {title}
        </PageTitle>
        <ErrorAlert error={remove.error} className="mb-3" />
        <ErrorAlert error={conversation.error} className="mb-3" />

        <div className="flex-1 space-y-4" aria-live="polite" aria-busy={streaming}>
          {conversationId && conversation.isPending && <Spinner label="Loading the conversation" />}
          {messages.length === 0 && !shownPending && !conversation.isPending && (
            <p className="text-sm text-slate-500 dark:text-slate-400">
              Ask a question about your documents. Answers cite the passages they come from; open a
              numbered source to read it in context.
            </p>
          )}
          {messages.map((m) => (
            <MessageView key={m.id} message={m} onCite={setOpenCitation} />
          ))}
          {shownPending && (
            <>
              <UserBubble>{shownPending.question}</UserBubble>
              <AssistantBubble
                content={shownPending.text}
                citations={shownPending.citations}
                onCite={setOpenCitation}
                streaming={shownPending.state === "streaming"}
              />
              {shownPending.state === "failed" && <ErrorAlert error={shownPending.error} />}
            </>
          )}
          <div ref={endRef} />
        </div>

        <Composer
          disabled={streaming}
          onSend={(q) => void ask(q)}
          onStop={streaming ? () => abortRef.current?.abort() : undefined}
        />
      </section>

      <PassageDialog citation={openCitation} onClose={() => setOpenCitation(null)} />
    </div>
  );
}

function UserBubble({ children }: { children: ReactNode }) {
  return (
    <div className="flex justify-end">
      <div className="max-w-[85%] whitespace-pre-wrap rounded-lg bg-indigo-600 px-4 py-2 text-sm text-white dark:bg-indigo-500">
        <span className="sr-only">You: </span>
        {children}
      </div>
    </div>
  );
}

function MessageView({ message, onCite }: { message: Message; onCite: (c: Citation) => void }) {
  if (message.role === "user") return <UserBubble>{message.content}</UserBubble>;
  return (
    <AssistantBubble
      content={message.content}
      citations={message.citations}
      mode={message.mode}
      onCite={onCite}
    />
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

/** The answer's text with its `[n]` markers turned into source chips. */
export function AnswerText({ content, citations, onCite }: { content: string; citations: Citation[]; onCite: (c: Citation) => void }) {
  const byNumber = new Map(citations.map((c) => [c.n, c]));
  const parts: ReactNode[] = [];
  const marker = /\[(\d+)\]/g;
  let last = 0;
  for (const match of content.matchAll(marker)) {
    const citation = byNumber.get(Number(match[1]));
    if (!citation) continue;
    parts.push(content.slice(last, match.index));
    parts.push(<CitationChip key={`${match.index}`} citation={citation} onOpen={onCite} />);
    last = match.index + match[0].length;
  }
  parts.push(content.slice(last));
  return <>{parts}</>;
}

function AssistantBubble({
  content,
  citations,
  mode,
  onCite,
  streaming = false,
}: {
  content: string;
  citations: Citation[];
  mode?: Message["mode"];
  onCite: (c: Citation) => void;
  streaming?: boolean;
}) {
  return (
    <article
      aria-label="Answer"
      className="max-w-[92%] rounded-lg border border-slate-200 bg-white px-4 py-3 text-sm shadow-sm dark:border-slate-800 dark:bg-slate-900"
    >
      {mode === "extractive" && (
        <p className="mb-2">
          <Badge tone="amber">Extractive</Badge>{" "}
          <span className="text-xs text-slate-500 dark:text-slate-400">
            No language model is configured: these are the most relevant passages.
          </span>
        </p>
      )}
      <div className="whitespace-pre-wrap leading-relaxed" data-testid="answer-text">
        <AnswerText content={content} citations={citations} onCite={onCite} />
        {streaming && content === "" && <Spinner small label="Thinking" />}
        {streaming && content !== "" && (
          <span aria-hidden="true" className="ml-0.5 inline-block h-4 w-1.5 animate-pulse bg-slate-400 align-text-bottom" />
        )}
      </div>
      {citations.length > 0 && (
        <div className="mt-3 border-t border-slate-200 pt-2 dark:border-slate-800">
          <h3 className="mb-1 text-xs font-semibold uppercase tracking-wide text-slate-500 dark:text-slate-400">
            Sources
          </h3>
          <ol className="flex flex-wrap gap-2">
            {citations.map((c) => (
              <li key={`${c.n}-${c.chunk_id}`}>
                <button
                  type="button"
                  onClick={() => onCite(c)}
                  className="inline-flex max-w-64 items-center gap-1.5 rounded-full border border-slate-300 px-2 py-0.5 text-xs hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800"
                >
                  <span className="font-semibold text-indigo-700 dark:text-indigo-300">{c.n}</span>
                  <span className="truncate">{c.document_name}</span>
                </button>
              </li>
            ))}
          </ol>
        </div>
      )}
    </article>
  );
}

function Composer({
  disabled,
  onSend,
  onStop,
}: {
  disabled: boolean;
  onSend: (question: string) => void;
  onStop: (() => void) | undefined;
}) {
  const [text, setText] = useState("");
  const send = () => {
    const question = text.trim();
    if (!question || disabled) return;
    onSend(question);
    setText("");
  };
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    send();
  };
  const keyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  };
  return (
    <form onSubmit={submit} className="sticky bottom-0 mt-4 bg-slate-50 pb-2 pt-2 dark:bg-slate-950">
      <label htmlFor="question" className="sr-only">
        Your question
      </label>
      <div className="flex items-end gap-2">
        <textarea
          id="question"
          rows={2}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={keyDown}
          placeholder="Ask about your documents…"
          aria-describedby="question-hint"
          className="block w-full resize-y rounded-md border border-slate-300 bg-white px-3 py-2 text-sm dark:border-slate-600 dark:bg-slate-900"
        />
        {onStop ? (
          <Button onClick={onStop}>Stop</Button>
        ) : (
          <Button type="submit" variant="primary" disabled={disabled || text.trim() === ""}>
            Send
          </Button>
        )}
      </div>
      <p id="question-hint" className="mt-1 text-xs text-slate-500 dark:text-slate-400">
        Enter sends; Shift+Enter starts a new line.
      </p>
    </form>
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
          <p className="mb-2 text-xs text-slate-500 dark:text-slate-400">
            Passage {chunk.data.ordinal + 1} of {chunk.data.document_name}, characters {chunk.data.start}–{chunk.data.end}
          </p>
          <div
            className="max-h-[60vh] overflow-y-auto whitespace-pre-wrap rounded-md bg-slate-50 p-3 text-sm leading-relaxed text-slate-600 dark:bg-slate-950 dark:text-slate-300"
            data-testid="passage"
          >
            {chunk.data.before && <span>{chunk.data.before}</span>}
            <mark ref={markRef} className="rounded bg-amber-200 px-0.5 text-slate-900 dark:bg-amber-700 dark:text-white">
              {chunk.data.text}
            </mark>
            {chunk.data.after && <span>{chunk.data.after}</span>}
          </div>
          <p className="mt-3 text-sm">
            <a
              href={documentFileUrl(chunk.data.document_id)}
              className="font-medium text-indigo-700 underline dark:text-indigo-300"
              download
            >
              Download the original document
            </a>
          </p>
        </>
      )}
    </Dialog>
  );
}
