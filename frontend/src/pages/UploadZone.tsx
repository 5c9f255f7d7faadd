import { useId, useRef, useState, type DragEvent } from "react";
import { errorMessage, uploadDocument, type DocumentInfo } from "../api";
import { Badge, Button, ProgressBar, cx } from "../components/ui";

/** One file on its way in: sending, then the document's own status once the server has it. */
export interface Upload {
  key: string;
  name: string;
  /** Of the bytes sent, 0 to 1. */
  progress: number;
  /** The document the server made of it. */
  documentId?: string;
  /** Why sending failed. */
  error?: string;
}

export type UploadPhase =
  | { kind: "uploading"; percent: number }
  | { kind: "processing"; progress: number }
  | { kind: "ready" }
  | { kind: "failed"; reason: string };

/** Where an upload stands: its own sending, then its document's ingestion (from `docs`). */
export function phaseOf(upload: Upload, docs: DocumentInfo[] | undefined): UploadPhase {
  if (upload.error !== undefined) return { kind: "failed", reason: upload.error };
  // Every byte sent but no answer yet: the server is checking the file (a large PDF takes
  // seconds), which is processing to the person waiting, not "100%".
  if (upload.documentId === undefined && upload.progress >= 1) return { kind: "processing", progress: 0 };
  if (upload.documentId === undefined) return { kind: "uploading", percent: Math.round(upload.progress * 100) };
  const doc = docs?.find((d) => d.id === upload.documentId);
  if (doc?.status === "ready") return { kind: "ready" };
  if (doc?.status === "failed") return { kind: "failed", reason: doc.error ?? "it could not be read" };
  // Sent, and queued or being read: PDFs take a while here, so say so.
  return { kind: "processing", progress: doc?.progress ?? 0 };
}

/**
 * A drop zone for a collection: click to choose or drop files; each upload starts at once and
 * shows uploading n% → processing → ready, or failed with the reason.
 */
export function UploadZone({
  collectionId,
  docs,
  onChange,
}: {
  collectionId: string;
  docs: DocumentInfo[] | undefined;
  onChange: () => Promise<unknown>;
}) {
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const id = useId();

  const start = (files: File[]) => {
    const stamp = Date.now();
    const added = files.map((file, i) => ({ key: `${stamp}-${i}-${file.name}`, name: file.name, progress: 0 }));
    setUploads((u) => [...added, ...u]);
    void Promise.all(
      files.map(async (file, i) => {
        const key = added[i]?.key ?? "";
        const update = (patch: Partial<Upload>) =>
          setUploads((u) => u.map((x) => (x.key === key ? { ...x, ...patch } : x)));
        try {
          const doc = await uploadDocument(collectionId, file, (progress) => update({ progress }));
          update({ documentId: doc.id, progress: 1 });
        } catch (err) {
          update({ error: errorMessage(err) });
        }
        await onChange();
      }),
    );
  };

  const onDrop = (e: DragEvent<HTMLDivElement>) => {
    e.preventDefault();
    setOver(false);
    const files = Array.from(e.dataTransfer.files);
    if (files.length > 0) start(files);
  };

  return (
    <div>
      <div
        data-dropzone
        data-testid="drop-zone"
        onDragOver={(e) => {
          e.preventDefault();
          e.dataTransfer.dropEffect = "copy";
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
        onClick={(e) => {
          if (e.target === e.currentTarget) input.current?.click();
        }}
        className={cx(
          "flex flex-col items-center justify-center gap-2 rounded-lg border-2 border-dashed px-4 py-6 text-center text-sm",
          over
            ? "border-indigo-500 bg-indigo-50 dark:border-indigo-400 dark:bg-indigo-950"
            : "border-slate-300 dark:border-slate-600",
        )}
      >
        <p className="font-medium">Drop files here to add them</p>
        <Button variant="primary" size="sm" onClick={() => input.current?.click()}>
          Choose files…
        </Button>
        <label htmlFor={id} className="sr-only">
          Files to upload
        </label>
        <input
          ref={input}
          id={id}
          type="file"
          multiple
          className="sr-only"
          tabIndex={-1}
          aria-describedby={`${id}-hint`}
          onChange={(e) => {
            const files = Array.from(e.target.files ?? []);
            e.target.value = "";
            if (files.length > 0) start(files);
          }}
        />
        <p id={`${id}-hint`} className="text-xs text-slate-600 dark:text-slate-300">
          Text, Markdown, PDF, Word (.docx) or HTML. Uploads start at once.
        </p>
      </div>
      {uploads.length > 0 && (
        <ul className="mt-3 space-y-2" aria-label="Uploads">
          {uploads.map((u) => (
            <UploadItem
              key={u.key}
              upload={u}
              phase={phaseOf(u, docs)}
              onDismiss={() => setUploads((all) => all.filter((x) => x.key !== u.key))}
            />
          ))}
        </ul>
      )}
    </div>
  );
}

function UploadItem({ upload, phase, onDismiss }: { upload: Upload; phase: UploadPhase; onDismiss: () => void }) {
  const done = phase.kind === "ready" || phase.kind === "failed";
  return (
    <li className="text-sm" data-testid="upload" data-phase={phase.kind}>
      <div className="flex items-center justify-between gap-2">
        <span className="min-w-0 truncate">{upload.name}</span>
        <span className="flex shrink-0 items-center gap-2" aria-live="polite">
          {phase.kind === "uploading" && <span className="text-xs">uploading {phase.percent}%</span>}
          {phase.kind === "processing" && <Badge tone="blue">processing</Badge>}
          {phase.kind === "ready" && <Badge tone="green">ready</Badge>}
          {phase.kind === "failed" && <Badge tone="red">failed</Badge>}
          {done && (
            <Button size="sm" variant="ghost" onClick={onDismiss} aria-label={`Dismiss ${upload.name}`}>
              Dismiss
            </Button>
          )}
        </span>
      </div>
      {phase.kind === "uploading" && <ProgressBar value={upload.progress} label={`Uploading ${upload.name}`} />}
      {phase.kind === "processing" && <ProgressBar value={phase.progress} label={`Processing ${upload.name}`} />}
      {phase.kind === "failed" && (
        <p role="alert" className="text-xs text-red-700 dark:text-red-300">
          {upload.name}: {phase.reason}
        </p>
      )}
    </li>
  );
}
