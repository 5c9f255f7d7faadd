/**
 * A file dropped on a page where nothing takes it makes the browser open that file, leaving
 * Berth (and any upload in flight). This refuses such drops everywhere but in drop zones,
 * which mark themselves with `data-dropzone`.
 */

function inZone(target: EventTarget | null): boolean {
  return target instanceof Element && target.closest("[data-dropzone]") !== null;
}

function refuse(e: DragEvent) {
  if (!e.dataTransfer?.types.includes("Files")) return;
  // Always: even inside a zone, the browser must not open the file.
  e.preventDefault();
  if (!inZone(e.target)) e.dataTransfer.dropEffect = "none";
}

/** Installs the guard on `win`; returns what removes it. */
export function installDropGuard(win: Window = window): () => void {
  win.addEventListener("dragover", refuse);
  win.addEventListener("drop", refuse);
  return () => {
    win.removeEventListener("dragover", refuse);
    win.removeEventListener("drop", refuse);
  };
}
