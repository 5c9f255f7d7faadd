import { useState, type SubmitEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import {
  createCollection,
  deleteCollection,
  deleteDocument,
  documentFileUrl,
  errorMessage,
  getStatus,
  listCollections,
  listDocuments,
  retryDocument,
  type Collection,
  type DocumentInfo,
  type DocumentStatus,
} from "../api";
import {
  Alert,
  Badge,
  Button,
  Card,
  Checkbox,
  ErrorAlert,
  PageTitle,
  ProgressBar,
  Spinner,
  TextField,
  cx,
  formatBytes,
  formatTime,
} from "../components/ui";
import { Link, navigate } from "../router";
import { SharingPanel } from "./Sharing";
import { UploadZone } from "./UploadZone";

/** Where a collection's page is. */
export function collectionPath(id: string): string {
  return `/collections/${encodeURIComponent(id)}`;
}

/** Where a document's text is read, optionally at one passage. */
export function documentPath(id: string, passage?: number): string {
  return `/documents/${encodeURIComponent(id)}${passage === undefined ? "" : `?passage=${passage}`}`;
}

/** How often document status is polled while any document is queued or processing. */
export const POLL_MS = 1000;

export function needsPolling(docs: DocumentInfo[] | undefined): boolean {
  return (docs ?? []).some((d) => d.status === "queued" || d.status === "processing");
}

/** Tells when search is lexical only (no embedding model), from GET /status. */
export function RetrievalNotice() {
  const status = useQuery({ queryKey: ["status"], queryFn: getStatus, staleTime: 60_000 });
  if (status.data?.retrieval !== "lexical") return null;
  return (
    <Alert tone="warning" title="Lexical only" className="mb-4">
      No embedding model is configured, so search matches the words of a question, not its meaning.
      An admin can set one up (BERTH_EMBED_URL and BERTH_EMBED_MODEL).
    </Alert>
  );
}

export function DocumentsPage({ collectionId }: { collectionId?: string }) {
  const collections = useQuery({ queryKey: ["collections"], queryFn: listCollections });
  const selected = collections.data?.find((c) => c.id === collectionId);
  return (
    <div>
      <PageTitle>Documents</PageTitle>
      <RetrievalNotice />
      <div className="grid grid-cols-1 gap-6 md:grid-cols-[18rem_minmax(0,1fr)]">
        <aside aria-label="Collections" className="space-y-4">
          <CollectionList collections={collections.data} loading={collections.isPending} error={collections.error} current={collectionId} />
          <NewCollectionForm />
        </aside>
        <div>
          {collectionId === undefined && collections.data?.length === 0 && (
            <Alert tone="info" title="Start with a collection">
              <p>
                A collection holds documents that belong together: a handbook, a project’s notes. Name one under
                “New collection”, then drop files into it. Chat answers from the collections you choose.
              </p>
            </Alert>
          )}
          {collectionId === undefined && (collections.data?.length ?? 0) > 0 && (
            <p className="text-sm text-slate-600 dark:text-slate-300">
              Choose a collection to see and add its documents, or create one.
            </p>
          )}
          {collectionId !== undefined && collections.isSuccess && !selected && (
            <Alert tone="error">This collection does not exist, or you cannot see it.</Alert>
          )}
          {selected && <CollectionView key={selected.id} collection={selected} />}
        </div>
      </div>
    </div>
  );
}

function CollectionList({
  collections,
  loading,
  error,
  current,
}: {
  collections: Collection[] | undefined;
  loading: boolean;
  error: unknown;
  current: string | undefined;
}) {
  return (
    <Card>
      <h2 className="mb-2 text-sm font-semibold">Collections</h2>
      {loading && <Spinner label="Loading collections" />}
      <ErrorAlert error={error} />
      {collections?.length === 0 && (
        <p className="text-sm text-slate-600 dark:text-slate-300">No collections yet: create the first one below.</p>
      )}
      <ul className="space-y-1">
        {collections?.map((c) => (
          <li key={c.id}>
            <Link
              to={collectionPath(c.id)}
              aria-current={c.id === current ? "page" : undefined}
              className={cx(
                "flex items-center justify-between gap-2 rounded-md px-3 py-2 text-sm",
                c.id === current
                  ? "bg-indigo-100 font-medium text-indigo-900 dark:bg-indigo-950 dark:text-indigo-100"
                  : "hover:bg-slate-100 dark:hover:bg-slate-800",
              )}
            >
              <span className="truncate">{c.name}</span>
              <span className="flex shrink-0 items-center gap-1">
                {c.shared && <Badge tone="blue">shared</Badge>}
                <span className="text-xs text-slate-500 dark:text-slate-400" aria-label={`${c.document_count} documents`}>
                  {c.document_count}
                </span>
              </span>
            </Link>
          </li>
        ))}
      </ul>
    </Card>
  );
}

function NewCollectionForm() {
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [shared, setShared] = useState(false);
  const create = useMutation({
    mutationFn: () => createCollection(name.trim(), shared),
    onSuccess: async (c) => {
      setName("");
      setShared(false);
      await client.invalidateQueries({ queryKey: ["collections"] });
      navigate(collectionPath(c.id));
    },
  });
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    if (name.trim()) create.mutate();
  };
  return (
    <Card>
      <form onSubmit={submit} className="space-y-3" aria-label="New collection">
        <h2 className="text-sm font-semibold">New collection</h2>
        <ErrorAlert error={create.error} />
        <TextField label="Name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        <Checkbox label="Shared with members" checked={shared} onChange={(e) => setShared(e.target.checked)} />
        <Button type="submit" variant="primary" busy={create.isPending} disabled={name.trim() === ""}>
          Create collection
        </Button>
      </form>
    </Card>
  );
}

function CollectionView({ collection }: { collection: Collection }) {
  const client = useQueryClient();
  const docsKey = ["documents", collection.id];
  const docs = useQuery({
    queryKey: docsKey,
    queryFn: () => listDocuments(collection.id),
    refetchInterval: (query) => (needsPolling(query.state.data) ? POLL_MS : false),
  });
  const refresh = () =>
    Promise.all([
      client.invalidateQueries({ queryKey: docsKey }),
      client.invalidateQueries({ queryKey: ["collections"] }),
    ]);

  const removeCollection = useMutation({
    mutationFn: () => deleteCollection(collection.id),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ["collections"] });
      navigate("/documents");
    },
  });

  return (
    <div className="space-y-4">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h2 className="text-lg font-semibold">
          {collection.name}{" "}
          {collection.shared && <Badge tone="blue">shared</Badge>}{" "}
          {collection.role === "member" && (
            <span className="text-sm font-normal text-slate-500 dark:text-slate-400">owned by {collection.owner.username}</span>
          )}
        </h2>
        {collection.role === "owner" && (
          <Button
            variant="danger"
            size="sm"
            busy={removeCollection.isPending}
            onClick={() => {
              if (window.confirm(`Delete the collection “${collection.name}” and all its documents?`)) removeCollection.mutate();
            }}
          >
            Delete collection
          </Button>
        )}
      </div>
      <ErrorAlert error={removeCollection.error} />

      <Card>
        <UploadZone collectionId={collection.id} docs={docs.data} onChange={refresh} />
      </Card>

      <SharingPanel collection={collection} />

      <Card aria-label="Documents in this collection">
        {docs.isPending && <Spinner label="Loading documents" />}
        <ErrorAlert error={docs.error} />
        {docs.data?.length === 0 && (
          <p className="text-sm text-slate-600 dark:text-slate-300">
            No documents here yet. Drop files into the box above, or choose them; each one is read and indexed,
            then answers can cite it.
          </p>
        )}
        {docs.data && docs.data.length > 0 && <DocumentTable docs={docs.data} onChange={refresh} />}
      </Card>
    </div>
  );
}

const STATUS_TONE: Record<DocumentStatus, "gray" | "blue" | "green" | "red"> = {
  queued: "gray",
  processing: "blue",
  ready: "green",
  failed: "red",
};

function DocumentTable({ docs, onChange }: { docs: DocumentInfo[]; onChange: () => Promise<unknown> }) {
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm">
        <thead className="text-xs uppercase tracking-wide text-slate-500 dark:text-slate-400">
          <tr>
            <th scope="col" className="py-2 pr-3 font-medium">Name</th>
            <th scope="col" className="hidden py-2 pr-3 font-medium sm:table-cell">Size</th>
            <th scope="col" className="py-2 pr-3 font-medium">Status</th>
            <th scope="col" className="hidden py-2 pr-3 font-medium sm:table-cell">Passages</th>
            <th scope="col" className="hidden py-2 pr-3 font-medium lg:table-cell">Added</th>
            <th scope="col" className="py-2 font-medium"><span className="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-200 dark:divide-slate-800">
          {docs.map((d) => (
            <DocumentRow key={d.id} doc={d} onChange={onChange} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function DocumentRow({ doc, onChange }: { doc: DocumentInfo; onChange: () => Promise<unknown> }) {
  const retry = useMutation({ mutationFn: () => retryDocument(doc.id), onSuccess: onChange });
  const remove = useMutation({ mutationFn: () => deleteDocument(doc.id), onSuccess: onChange });
  const error = retry.error ?? remove.error;
  return (
    <tr data-testid="document-row" data-status={doc.status}>
      <td className="max-w-[9rem] py-2 pr-3 sm:max-w-[16rem]">
        <Link to={documentPath(doc.id)} className="block truncate font-medium hover:underline">
          {doc.filename}
        </Link>
        <a href={documentFileUrl(doc.id)} className="text-xs text-slate-600 underline dark:text-slate-300" download={doc.filename}>
          Download<span className="sr-only"> {doc.filename}</span>
        </a>
        {doc.error && <p className="text-xs text-red-700 dark:text-red-300">{doc.error}</p>}
        {error !== null && <p role="alert" className="text-xs text-red-700 dark:text-red-300">{errorMessage(error)}</p>}
      </td>
      <td className="hidden whitespace-nowrap py-2 pr-3 sm:table-cell">{formatBytes(doc.size)}</td>
      <td className="py-2 pr-3">
        <div className="flex min-w-24 flex-col gap-1">
          <span aria-live="polite">
            <Badge tone={STATUS_TONE[doc.status]}>{doc.status}</Badge>
          </span>
          {doc.status === "processing" && (
            <ProgressBar value={doc.progress} label={`Processing ${doc.filename}`} />
          )}
        </div>
      </td>
      <td className="hidden py-2 pr-3 sm:table-cell">{doc.status === "ready" ? doc.chunk_count : "—"}</td>
      <td className="hidden whitespace-nowrap py-2 pr-3 lg:table-cell">{formatTime(doc.created_at)}</td>
      <td className="py-2">
        <div className="flex justify-end gap-2">
          {doc.status === "failed" && (
            <Button size="sm" onClick={() => retry.mutate()} busy={retry.isPending} aria-label={`Retry ${doc.filename}`}>
              Retry
            </Button>
          )}
          <Button
            size="sm"
            variant="danger"
            busy={remove.isPending}
            aria-label={`Delete ${doc.filename}`}
            onClick={() => {
              if (window.confirm(`Delete “${doc.filename}”?`)) remove.mutate();
            }}
          >
            Delete
          </Button>
        </div>
      </td>
    </tr>
  );
}
