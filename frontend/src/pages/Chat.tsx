import { useCallback, useEffect, useRef, useState, type SubmitEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import {
  ApiError,
  createConversation,
  deleteConversation,
  getConversation,
  isAbort,
  listCollections,
  listConversations,
  streamMessage,
  updateConversation,
  type Citation,
  type ConversationDetail,
} from "../api";
import { Alert, Button, ErrorAlert, PageTitle, Spinner } from "../components/ui";
import { NEW_CONVERSATION, loadDraft, saveDraft } from "../drafts";
import { Link, navigate } from "../router";
import { AssistantBubble, PassageDialog, UserBubble } from "./chat/Answer";
import { Composer } from "./chat/Composer";
import { ConversationList } from "./chat/Conversations";
import { useDropUpload } from "./chat/Drop";
import { ScopePicker, type Scope } from "./chat/Scope";

export { AnswerText, CitationChip, PassageDialog } from "./chat/Answer";

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

const LINK = "font-medium text-indigo-700 underline dark:text-indigo-300";

/** A failure that is not the API's own words (a connection cut mid-answer) said for people. */
function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(0, "network", "the connection to the Berth server broke before the answer was complete; check your connection and retry");
}

export function ChatPage({ conversationId }: { conversationId?: string }) {
  const client = useQueryClient();
  const conversations = useQuery({ queryKey: ["conversations"], queryFn: listConversations });
  const conversation = useQuery({
    queryKey: ["conversation", conversationId],
    queryFn: () => getConversation(conversationId ?? ""),
    enabled: conversationId !== undefined,
  });
  const collections = useQuery({ queryKey: ["collections"], queryFn: listCollections });
  const [pending, setPending] = useState<Pending | null>(null);
  const [openCitation, setOpenCitation] = useState<Citation | null>(null);
  const [drawer, setDrawer] = useState(false);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [asked, setAsked] = useState(0);
  const abortRef = useRef<AbortController | null>(null);
  const endRef = useRef<HTMLDivElement>(null);
  const questionRef = useRef<HTMLDivElement>(null);

  // The box holds this conversation's draft; switching conversations shows the other's. A
  // conversation this page just created for a question keeps the (empty) box as it is.
  const draftKey = conversationId ?? NEW_CONVERSATION;
  const [text, setText] = useState(() => loadDraft(draftKey));
  const [shownKey, setShownKey] = useState(draftKey);
  const [created, setCreated] = useState<string | null>(null);
  if (shownKey !== draftKey) {
    setShownKey(draftKey);
    if (draftKey !== created) setText(loadDraft(draftKey));
  }
  const typed = (value: string) => {
    setText(value);
    saveDraft(draftKey, value);
  };

  // The scope of a conversation not yet created (it is created with its first question).
  const [newScope, setNewScope] = useState<Scope>({ collections: [], documents: [] });
  // A change being saved shows at once (a checkbox answers its click), the stored scope after.
  const [choosing, setChoosing] = useState<Scope | null>(null);
  const scope: Scope =
    choosing ??
    (conversationId
      ? { collections: conversation.data?.collection_ids ?? [], documents: conversation.data?.document_ids ?? [] }
      : newScope);

  // For the time-to-first-render measurement of the browser tests (performance.mark is free).
  const ready = conversations.isSuccess;
  useEffect(() => {
    if (ready && performance.getEntriesByName("berth:chat-ready").length === 0) {
      performance.mark("berth:chat-ready");
    }
  }, [ready]);

  useEffect(() => () => abortRef.current?.abort(), []);

  // Opening a conversation shows its end; a question just asked shows from its start, and the
  // page does not follow the answer as it streams: reading starts at the answer's first line.
  const loaded = conversation.isSuccess;
  useEffect(() => {
    if (loaded && conversationId !== created) endRef.current?.scrollIntoView({ block: "end" });
  }, [loaded, conversationId, created]);
  useEffect(() => {
    if (asked > 0) questionRef.current?.scrollIntoView({ block: "start" });
  }, [asked]);

  const setDetail = (id: string, change: Partial<ConversationDetail>) => {
    client.setQueryData<ConversationDetail>(["conversation", id], (old) => (old ? { ...old, ...change } : old));
    void client.invalidateQueries({ queryKey: ["conversations"] });
  };

  const rescope = useMutation({
    mutationFn: (next: Scope) =>
      updateConversation(conversationId ?? "", { collection_ids: next.collections, document_ids: next.documents }),
    onSuccess: (c) => setDetail(c.id, { collection_ids: c.collection_ids ?? [], document_ids: c.document_ids ?? [] }),
    onSettled: () => setChoosing(null),
  });

  const rename = useMutation({
    mutationFn: (title: string) => updateConversation(conversationId ?? "", { title }),
    onSuccess: (c) => {
      setDetail(c.id, { title: c.title });
      setRenaming(null);
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
    // The box empties; the draft stays until the question is answered.
    setText("");
    saveDraft(draftKey, question);
    try {
      if (id === undefined) {
        const made = await createConversation({ collection_ids: newScope.collections, document_ids: newScope.documents });
        id = made.id;
        saveDraft(id, question);
        saveDraft(NEW_CONVERSATION, "");
        setCreated(id);
        setNewScope({ collections: [], documents: [] });
        void client.invalidateQueries({ queryKey: ["conversations"] });
        navigate(`/chat/${encodeURIComponent(id)}`, { replace: true });
      }
      const target = id;
      const base = id === conversationId ? (conversation.data?.messages.length ?? 0) : 0;
      setPending({ conversationId: target, base, question, citations: [], text: "", state: "streaming" });
      setAsked((n) => n + 1);
      await streamMessage(
        target,
        question,
        {
          onSources: (citations) => setPending((p) => (p ? { ...p, citations } : p)),
          onToken: (t) => setPending((p) => (p ? { ...p, text: p.text + t } : p)),
        },
        controller.signal,
      );
      if (loadDraft(target) === question) saveDraft(target, "");
      setPending((p) => (p ? { ...p, state: "saving" } : p));
      await Promise.all([
        client.invalidateQueries({ queryKey: ["conversation", target] }),
        client.invalidateQueries({ queryKey: ["conversations"] }),
      ]);
      setPending(null);
    } catch (err) {
      if (id !== undefined) void client.invalidateQueries({ queryKey: ["conversation", id] });
      if (isAbort(err)) {
        if (id !== undefined && loadDraft(id) === question) saveDraft(id, "");
        setPending(null);
        return;
      }
      // Signed out under us: the sign-in page shows, and the draft brings the question back.
      if (err instanceof ApiError && err.status === 401) return;
      const error = asApiError(err);
      setText((t) => (t.trim() === "" ? question : t));
      setPending((p) =>
        p
          ? { ...p, state: "failed", error }
          : { conversationId: id ?? "", base: conversation.data?.messages.length ?? 0, question, citations: [], text: "", state: "failed", error },
      );
    } finally {
      if (abortRef.current === controller) abortRef.current = null;
    }
  };

  const drop = useDropUpload(collections.data ?? [], scope.collections);
  // Closing the drawer gives focus back to the button that opened it (on phones, where it shows).
  const closeDrawer = useCallback(() => {
    setDrawer(false);
    const opener = document.getElementById("conversation-drawer-opener");
    if (opener?.offsetParent) opener.focus();
  }, []);
  // By id, not the ref: these run in handlers made during render.
  const focusBox = () => document.getElementById("question")?.focus();
  const startNew = () => {
    setDrawer(false);
    navigate("/chat");
    focusBox();
  };
  const editQuestion = (question: string) => {
    typed(question);
    focusBox();
  };

  // While a question is pending, show the conversation as it was when it was sent: the server
  // stores the question (and then the answer) while the answer streams. Once the stored
  // conversation has both, it replaces the pending one.
  const stored = conversation.data?.messages ?? [];
  const mine = pending && (pending.conversationId === conversationId || conversationId === undefined) ? pending : null;
  const shownPending = mine && !(mine.state !== "failed" && stored.length >= mine.base + 2) ? mine : null;
  const messages = shownPending ? stored.slice(0, shownPending.base) : stored;
  const failed = shownPending?.state === "failed" ? shownPending : null;
  const gone = conversation.error instanceof ApiError && conversation.error.status === 404;
  const title = gone ? "Conversation not found" : conversationId ? (conversation.data?.title ?? "Conversation") : "New conversation";
  const noDocuments = collections.isSuccess && collections.data.every((c) => c.document_count === 0);
  const lastUser = [...messages].reverse().find((m) => m.role === "user");
  const lastAnswer = messages.at(-1)?.role === "assistant" ? messages.at(-1) : undefined;

  const uploadHint = (
    <>
      <Link to="/documents" className={LINK}>
        upload some on the Documents page
      </Link>{" "}
      (or drop a file here)
    </>
  );

  return (
    <div className="grid min-w-0 flex-1 gap-6 md:grid-cols-[16rem_minmax(0,1fr)]">
      <ConversationList conversations={conversations} currentId={conversationId} open={drawer} onClose={closeDrawer} onNew={startNew} />

      <section aria-label="Conversation" className="relative flex min-w-0 flex-col" {...drop.handlers}>
        {drop.overlay}
        <div className="mb-2 md:hidden">
          <Button id="conversation-drawer-opener" size="sm" aria-expanded={drawer} aria-controls="conversation-drawer" onClick={() => setDrawer(true)}>
            ☰ Conversations
          </Button>
        </div>
        {renaming !== null ? (
          <form
            className="mb-4 flex flex-wrap items-center gap-2"
            onSubmit={(e: SubmitEvent) => {
              e.preventDefault();
              rename.mutate(renaming);
            }}
          >
            <label htmlFor="conversation-title" className="sr-only">
              Conversation title
            </label>
            <input
              id="conversation-title"
              value={renaming}
              onChange={(e) => setRenaming(e.target.value)}
              maxLength={200}
              autoFocus
              className="min-w-0 flex-1 rounded-md border border-slate-300 bg-white px-3 py-1.5 text-base font-semibold dark:border-slate-600 dark:bg-slate-900"
            />
            <Button type="submit" variant="primary" size="sm" busy={rename.isPending} disabled={renaming.trim() === ""}>
              Save
            </Button>
            <Button size="sm" onClick={() => setRenaming(null)}>
              Cancel
            </Button>
            <ErrorAlert error={rename.error} className="w-full" />
          </form>
        ) : (
          <PageTitle
            actions={
              conversationId &&
              conversation.isSuccess && (
                <div className="flex flex-wrap gap-2">
                  <Button size="sm" onClick={() => setRenaming(conversation.data.title)}>
                    Rename
                  </Button>
                  <Button
                    variant="danger"
                    size="sm"
                    busy={remove.isPending}
                    disabled={streaming}
                    onClick={() => {
                      if (window.confirm("Delete this conversation?")) remove.mutate(conversationId);
                    }}
                  >
                    Delete
                  </Button>
                </div>
              )
            }
          >
            {title}
          </PageTitle>
        )}
        <ErrorAlert error={remove.error} className="mb-3" />
        {gone ? (
          <div className="space-y-2 text-sm">
            <p>This conversation no longer exists: it may have been deleted.</p>
            <p>
              <Link to="/chat" className={LINK}>
                Start a new conversation
              </Link>{" "}
              or pick one from your list.
            </p>
          </div>
        ) : (
          <>
            {conversation.error !== null && (
              <div className="mb-3 space-y-2">
                <ErrorAlert error={conversation.error} />
                <Button size="sm" onClick={() => void conversation.refetch()}>
                  Try again
                </Button>
              </div>
            )}
            {(conversationId === undefined || conversation.isSuccess) && (
              <ScopePicker
                collections={collections.data ?? []}
                scope={scope}
                onChange={(next) => {
                  if (conversationId) {
                    setChoosing(next);
                    rescope.mutate(next);
                  } else {
                    setNewScope(next);
                  }
                }}
                busy={rescope.isPending}
                error={rescope.error}
              />
            )}

            <div className="flex-1 space-y-4" aria-live="polite" aria-busy={streaming}>
              {conversationId && conversation.isPending && <Spinner label="Loading the conversation" />}
              {messages.length === 0 && !shownPending && !(conversationId && conversation.isPending) && (
                <div className="space-y-2 text-sm text-slate-700 dark:text-slate-300" data-testid="chat-empty">
                  {noDocuments ? (
                    <p>You have no documents yet: {uploadHint}, then ask about them here.</p>
                  ) : (
                    <>
                      <p>
                        Ask a question about your documents. Answers cite the passages they come from; open a numbered
                        source to read it in context.
                      </p>
                      <p>
                        Your documents are on the{" "}
                        <Link to="/documents" className={LINK}>
                          Documents page
                        </Link>
                        ; add more there or drop a file here.
                      </p>
                    </>
                  )}
                </div>
              )}
              {messages.map((m) =>
                m.role === "user" ? (
                  <UserBubble key={m.id} onEdit={m === lastUser && !streaming ? () => editQuestion(m.content) : undefined}>
                    {m.content}
                  </UserBubble>
                ) : (
                  <div key={m.id} className="space-y-2">
                    <AssistantBubble
                      message={m}
                      content={m.content}
                      citations={m.citations}
                      mode={m.mode}
                      onCite={setOpenCitation}
                      conversationId={conversationId}
                      onRegenerate={m === lastAnswer && lastUser && !streaming ? () => void ask(lastUser.content) : undefined}
                    />
                    {m.citations.length === 0 && noDocuments && (
                      <Alert tone="info">Nothing to answer from: you have no documents yet. {uploadHint}, then ask again.</Alert>
                    )}
                  </div>
                ),
              )}
              {shownPending && (
                <div ref={questionRef} className="scroll-mt-4 space-y-4">
                  <UserBubble>{shownPending.question}</UserBubble>
                  {/* A failure before any of the answer came says so by the box, not in an empty answer. */}
                  {!(shownPending.state === "failed" && shownPending.text === "") && (
                    <AssistantBubble
                      content={shownPending.text}
                      citations={shownPending.citations}
                      onCite={setOpenCitation}
                      streaming={shownPending.state === "streaming"}
                    />
                  )}
                </div>
              )}
              <div ref={endRef} />
            </div>

            <Composer
              text={text}
              onText={typed}
              disabled={streaming}
              onSend={(q) => void ask(q)}
              onStop={streaming ? () => abortRef.current?.abort() : undefined}
              notice={
                <>
                  {drop.progress}
                  {failed && (
                    <div className="mb-2 space-y-2" data-testid="ask-failed">
                      <ErrorAlert error={failed.error} />
                      <p className="flex flex-wrap items-center gap-2 text-sm">
                        <span>Your question is still in the box.</span>
                        <Button size="sm" variant="primary" onClick={() => void ask(text.trim() || failed.question)}>
                          Retry
                        </Button>
                      </p>
                    </div>
                  )}
                </>
              }
            />
          </>
        )}
      </section>

      <PassageDialog citation={openCitation} onClose={() => setOpenCitation(null)} />
      {drop.chooser}
    </div>
  );
}
