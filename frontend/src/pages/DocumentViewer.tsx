import { useEffect, useRef } from "react";
import { useQuery } from "@tanstack/react-query";
import { ApiError, documentFileUrl, listCollections } from "../api";
import { Alert, ErrorAlert, PageTitle, Spinner } from "../components/ui";
import { Link, navigate } from "../router";
import { getDocumentText, splitAround } from "../teamApi";
import { collectionPath } from "./Documents";

/**
 * A document's text as Berth extracted it (what answers cite), with one passage marked and
 * scrolled into view: `/documents/:id?passage=:chunkId`.
 */
export function DocumentViewer({ documentId, passage }: { documentId: string; passage?: number }) {
  const text = useQuery({ queryKey: ["document-text", documentId], queryFn: () => getDocumentText(documentId) });
  const collections = useQuery({ queryKey: ["collections"], queryFn: listCollections });
  const mark = useRef<HTMLElement>(null);
  const missing = text.error instanceof ApiError && text.error.status === 404;

  // Links of old, when a collection's page was /documents/:id: send them to the collection.
  useEffect(() => {
    if (missing && collections.data?.some((c) => c.id === documentId)) {
      navigate(collectionPath(documentId), { replace: true });
    }
  }, [missing, collections.data, documentId]);

  const span = text.data?.passages.find((p) => p.id === passage);
  useEffect(() => {
    if (span && mark.current) {
      mark.current.scrollIntoView({ block: "center" });
      mark.current.focus({ preventScroll: true });
    }
  }, [span]);

  if (text.isPending) return <Spinner label="Loading the document" />;
  if (missing) {
    return (
      <>
        <PageTitle>Document not found</PageTitle>
        <Alert tone="error">
          This document does not exist, or you cannot see it: it may have been deleted.{" "}
          <Link to="/documents" className="underline">
            Go to your documents
          </Link>
        </Alert>
      </>
    );
  }
  if (!text.data) return <ErrorAlert error={text.error} />;

  const doc = text.data;
  const [before, cited, after] = splitAround(doc.text, span);
  const collection = collections.data?.find((c) => c.id === doc.collection_id);
  return (
    <div className="space-y-4">
      <PageTitle>{doc.filename}</PageTitle>
      <nav aria-label="Document" className="flex flex-wrap gap-x-4 gap-y-1 text-sm">
        {collection && (
          <Link to={collectionPath(collection.id)} className="text-indigo-700 underline dark:text-indigo-300">
            Back to {collection.name}
          </Link>
        )}
        <a href={documentFileUrl(doc.id)} download={doc.filename} className="text-indigo-700 underline dark:text-indigo-300">
          Download the original
        </a>
      </nav>
      {passage !== undefined && !span && doc.text !== "" && (
        <Alert tone="warning">
          The cited passage is no longer in this document (it was indexed again); here is the whole text.
        </Alert>
      )}
      {doc.text === "" ? (
        <Alert tone="info">
          This document’s text is not ready yet: it shows here once Berth has read it. Check its status on the
          Documents page.
        </Alert>
      ) : (
        <article
          aria-label="Document text"
          className="whitespace-pre-wrap break-words rounded-lg border border-slate-200 bg-white p-4 text-sm leading-relaxed dark:border-slate-800 dark:bg-slate-900"
        >
          {before}
          {span && (
            <mark
              ref={mark}
              tabIndex={-1}
              data-testid="cited-passage"
              className="rounded bg-amber-200 text-slate-900 outline-none ring-amber-500 focus:ring-2 dark:bg-amber-300"
            >
              {cited}
            </mark>
          )}
          {after}
        </article>
      )}
    </div>
  );
}
