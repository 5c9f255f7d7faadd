/** Dropping a file on the chat adds it to a collection the conversation searches, and says how
 * far it is: uploading (with progress), processing, ready — then it can be asked about. */

import { useEffect, useRef, useState, type DragEvent } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { getDocument, uploadDocument, type Collection, type DocumentInfo } from "../../api";
import { Alert, Button, Dialog, ErrorAlert, ProgressBar, SelectField } from "../../components/ui";
import { Link } from "../../router";

type Upload =
  | { state: "uploading"; name: string; progress: number }
  | { state: "processing"; name: string; doc: DocumentInfo }
  | { state: "ready"; name: string }
  | { state: "failed"; name: string; error: unknown };

/** Where a dropped file goes: the one collection the conversation searches (or the user has);
 * otherwise the user picks among those the conversation searches (or all). */
export function dropTargets(collections: Collection[], scope: string[]): Collection[] {
  return scope.length > 0 ? collections.filter((c) => scope.includes(c.id)) : collections;
}

export function useDropUpload(collections: Collection[], scope: string[]) {
  const client = useQueryClient();
  const [dragging, setDragging] = useState(false);
  const [asking, setAsking] = useState<File | null>(null);
  const [upload, setUpload] = useState<Upload | null>(null);
  const depth = useRef(0);
  const alive = useRef(true);
  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  const start = async (collectionId: string, file: File) => {
    setAsking(null);
    setUpload({ state: "uploading", name: file.name, progress: 0 });
    try {
      let doc = await uploadDocument(collectionId, file, (progress) =>
        setUpload((u) => (u?.state === "uploading" ? { ...u, progress } : u)),
      );
      while (alive.current && (doc.status === "queued" || doc.status === "processing")) {
        setUpload({ state: "processing", name: file.name, doc });
        await new Promise((r) => setTimeout(r, 700));
        doc = await getDocument(doc.id);
      }
      void client.invalidateQueries({ queryKey: ["collections"] });
      if (doc.status === "failed") {
        setUpload({ state: "failed", name: file.name, error: new Error(doc.error ?? "it could not be read") });
      } else {
        setUpload({ state: "ready", name: file.name });
      }
    } catch (error) {
      setUpload({ state: "failed", name: file.name, error });
    }
  };

  const targets = dropTargets(collections, scope);
  const handlers = {
    onDragEnter: (e: DragEvent) => {
      if (!e.dataTransfer.types.includes("Files")) return;
      depth.current += 1;
      setDragging(true);
    },
    onDragOver: (e: DragEvent) => {
      if (e.dataTransfer.types.includes("Files")) e.preventDefault();
    },
    onDragLeave: () => {
      depth.current = Math.max(0, depth.current - 1);
      if (depth.current === 0) setDragging(false);
    },
    onDrop: (e: DragEvent) => {
      const file = e.dataTransfer.files[0];
      depth.current = 0;
      setDragging(false);
      if (!file) return;
      e.preventDefault();
      const only = targets.length === 1 ? targets[0] : undefined;
      if (only) void start(only.id, file);
      else setAsking(file);
    },
  };

  const overlay = dragging ? (
    <div
      aria-hidden="true"
      className="pointer-events-none absolute inset-0 z-20 flex items-center justify-center rounded-lg border-2 border-dashed border-indigo-400 bg-indigo-50/90 text-sm font-medium text-indigo-900 dark:bg-indigo-950/90 dark:text-indigo-100"
    >
      Drop the file to add it to your documents
    </div>
  ) : null;

  const progress = upload && (
    <div className="mb-2" data-testid="drop-upload" data-state={upload.state}>
      {upload.state === "uploading" && (
        <div role="status" className="space-y-1 text-sm">
          <p>Uploading {upload.name}…</p>
          <ProgressBar value={upload.progress} label={`Uploading ${upload.name}`} />
        </div>
      )}
      {upload.state === "processing" && (
        <div role="status" className="space-y-1 text-sm">
          <p>Processing {upload.name}…</p>
          <ProgressBar value={upload.doc.progress} label={`Processing ${upload.name}`} />
        </div>
      )}
      {upload.state === "ready" && (
        <Alert tone="success">
          {upload.name} is ready: ask about it.{" "}
          <button type="button" className="underline" onClick={() => setUpload(null)}>
            Dismiss
          </button>
        </Alert>
      )}
      {upload.state === "failed" && (
        <>
          <ErrorAlert error={upload.error} />
          <p className="mt-1 text-sm">
            {upload.name} was not added. Drop it again, or{" "}
            <Link to="/documents" className="font-medium text-indigo-700 underline dark:text-indigo-300">
              add it on the Documents page
            </Link>
            .
          </p>
        </>
      )}
    </div>
  );

  const chooser = (
    <ChooseCollection file={asking} targets={targets} onCancel={() => setAsking(null)} onChoose={(id, f) => void start(id, f)} />
  );

  return { handlers, overlay, progress, chooser };
}

function ChooseCollection({
  file,
  targets,
  onCancel,
  onChoose,
}: {
  file: File | null;
  targets: Collection[];
  onCancel: () => void;
  onChoose: (collectionId: string, file: File) => void;
}) {
  const [choice, setChoice] = useState("");
  const chosen = targets.some((t) => t.id === choice) ? choice : (targets[0]?.id ?? "");
  return (
    <Dialog open={file !== null} onClose={onCancel} title="Add the file to which collection?">
      {targets.length === 0 ? (
        <p className="text-sm">
          You have no collection to add {file?.name} to yet.{" "}
          <Link to="/documents" className="font-medium text-indigo-700 underline dark:text-indigo-300">
            Create one on the Documents page
          </Link>
          , then drop the file again.
        </p>
      ) : (
        <form
          className="space-y-3"
          onSubmit={(e) => {
            e.preventDefault();
            if (file && chosen) onChoose(chosen, file);
          }}
        >
          <SelectField label="Collection" value={chosen} onChange={(e) => setChoice(e.target.value)}>
            {targets.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </SelectField>
          <div className="flex gap-2">
            <Button type="submit" variant="primary">
              Add {file?.name}
            </Button>
            <Button onClick={onCancel}>Cancel</Button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
