/**
 * Markdown for answers, rendered to React elements — never to an HTML string. A model's answer
 * is untrusted text: whatever it contains (`<script>`, `<img onerror>`, a `javascript:` link)
 * reaches the page as text, because React escapes every string and this renderer creates only
 * the elements listed below. Links keep only http(s) and mailto addresses.
 *
 * It covers what models write: headings, paragraphs, emphasis, inline code, fenced code (with a
 * Copy button), lists (nested), block quotes, rules, GitHub tables and links. Not raw HTML, not
 * images. Written here rather than taken from a library: the libraries that render to React
 * elements weigh about a third of the whole bundle (markdown-to-jsx 9: 32 kB gzipped).
 *
 * `renderText` gets every piece of plain text, so the chat turns `[n]` markers into source chips
 * wherever they stand (a list item, a table cell, a heading).
 */

import { useState, type ReactNode } from "react";

export type TextRenderer = (text: string, key: string) => ReactNode;

const plain: TextRenderer = (text) => text;

/** Only addresses a reader can safely follow: http, https and mailto. */
export function safeHref(href: string): string | null {
  try {
    const url = new URL(href.trim());
    return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/** Copies text to the clipboard; also where the Clipboard API is missing (plain-http sites). */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Refused (no permission): try the old way.
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let done: boolean;
  try {
    // Deprecated, and still the only way without the Clipboard API (a site on plain http).
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    done = document.execCommand("copy");
  } catch {
    done = false;
  }
  area.remove();
  return done;
}

/** "Copy", named for what it copies (`what`, for screen readers); says "Copied" beside it. */
export function CopyButton({ text, what, className }: { text: string; what: string; className?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  return (
    <span className="inline-flex items-center gap-1">
      <button
        type="button"
        aria-label={`Copy ${what}`}
        onClick={() =>
          void copyText(text).then((ok) => {
            setState(ok ? "copied" : "failed");
            window.setTimeout(() => setState("idle"), 2000);
          })
        }
        className={
          className ??
          "rounded border border-slate-300 bg-white px-2 py-0.5 text-xs font-medium text-slate-700 hover:bg-slate-100 dark:border-slate-600 dark:bg-slate-800 dark:text-slate-200 dark:hover:bg-slate-700"
        }
      >
        Copy
      </button>
      <span role="status" className="text-xs">
        {state === "copied" ? "Copied" : state === "failed" ? "Not copied: select the text and copy it" : ""}
      </span>
    </span>
  );
}

function CodeBlock({ code, lang }: { code: string; lang: string }) {
  return (
    <div className="my-2 overflow-hidden rounded-md border border-slate-200 dark:border-slate-700">
      <div className="flex items-center justify-between gap-2 bg-slate-100 px-2 py-1 text-xs text-slate-600 dark:bg-slate-800 dark:text-slate-300">
        <span>{lang || "code"}</span>
        <CopyButton text={code} what={`code${lang ? ` (${lang})` : ""}`} />
      </div>
      {/* tabIndex: a scrollable region must be reachable by keyboard. */}
      <pre tabIndex={0} className="overflow-x-auto bg-slate-50 p-3 text-xs leading-relaxed dark:bg-slate-950">
        <code>{code}</code>
      </pre>
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Inline

const LINK_CLASS = "font-medium text-indigo-700 underline dark:text-indigo-300";

/** Inline Markdown: code, strong, emphasis, strike-through, links, autolinks, escapes. */
export function inline(text: string, renderText: TextRenderer, keyBase = "i"): ReactNode[] {
  const out: ReactNode[] = [];
  let buffer = "";
  let n = 0;
  const key = () => `${keyBase}.${n++}`;
  const flush = () => {
    if (buffer) out.push(renderText(buffer, key()));
    buffer = "";
  };
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const c = text[i];
    if (c === "\\" && i + 1 < text.length && /[!-/:-@[-`{-~]/.test(text[i + 1] ?? "")) {
      buffer += text.charAt(i + 1);
      i += 2;
      continue;
    }
    if (c === "`") {
      const run = /^`+/.exec(rest)?.[0] ?? "`";
      const end = text.indexOf(run, i + run.length);
      if (end > 0) {
        flush();
        out.push(
          <code key={key()} className="rounded bg-slate-100 px-1 py-0.5 text-[0.9em] dark:bg-slate-800">
            {text.slice(i + run.length, end).trim() || text.slice(i + run.length, end)}
          </code>,
        );
        i = end + run.length;
        continue;
      }
      buffer += run;
      i += run.length;
      continue;
    }
    const strong = /^(\*\*|__)(?=\S)([\s\S]*?\S)\1/.exec(rest);
    if (strong && (strong[1] === "**" || !/\w/.test(text[i - 1] ?? ""))) {
      flush();
      out.push(<strong key={key()}>{inline(strong[2] ?? "", renderText, key())}</strong>);
      i += strong[0].length;
      continue;
    }
    const strike = /^~~(?=\S)([\s\S]*?\S)~~/.exec(rest);
    if (strike) {
      flush();
      out.push(<del key={key()}>{inline(strike[1] ?? "", renderText, key())}</del>);
      i += strike[0].length;
      continue;
    }
    const em = /^([*_])(?=[^\s*_])([\s\S]*?[^\s\\])\1(?![*_])/.exec(rest);
    if (em && (em[1] === "*" || !/\w/.test(text[i - 1] ?? ""))) {
      flush();
      out.push(<em key={key()}>{inline(em[2] ?? "", renderText, key())}</em>);
      i += em[0].length;
      continue;
    }
    const link = /^\[([^\]\n]+)\]\(\s*<?([^\s()<>]+)>?(?:\s+"[^"]*")?\s*\)/.exec(rest);
    if (link) {
      flush();
      const href = safeHref(link[2] ?? "");
      const label = inline(link[1] ?? "", renderText, key());
      out.push(
        href ? (
          <a key={key()} href={href} target="_blank" rel="noopener noreferrer nofollow" className={LINK_CLASS}>
            {label}
          </a>
        ) : (
          <span key={key()}>{label}</span>
        ),
      );
      i += link[0].length;
      continue;
    }
    const auto = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/.exec(rest) ?? /^(https?:\/\/[^\s<>]*[^\s<>.,;:!?)"'\]])/.exec(rest);
    if (auto && (auto[0].startsWith("<") || !/\w/.test(text[i - 1] ?? ""))) {
      const href = safeHref(auto[1] ?? "");
      if (href) {
        flush();
        out.push(
          <a key={key()} href={href} target="_blank" rel="noopener noreferrer nofollow" className={LINK_CLASS}>
            {auto[1]}
          </a>,
        );
        i += auto[0].length;
        continue;
      }
    }
    if (c === "\n") {
      flush();
      out.push(<br key={key()} />);
      i += 1;
      continue;
    }
    buffer += text.charAt(i);
    i += 1;
  }
  flush();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Blocks

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])(?:\s+(.*)|$)/;
const TABLE_SEPARATOR = /^ {0,3}\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function startsBlock(line: string): boolean {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function cells(row: string): string[] {
  let r = row.trim();
  if (r.startsWith("|")) r = r.slice(1);
  if (r.endsWith("|") && !r.endsWith("\\|")) r = r.slice(0, -1);
  return r.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
}

function blocks(lines: string[], renderText: TextRenderer, keyBase: string): ReactNode[] {
  const out: ReactNode[] = [];
  let i = 0;
  const key = () => `${keyBase}.${out.length}`;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    if (line.trim() === "") {
      i += 1;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1] ?? "```";
      const body: string[] = [];
      i += 1;
      // An unclosed fence (an answer still streaming) runs to the end.
      while (i < lines.length && !new RegExp(`^ {0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}\\s*$`).test(lines[i] ?? "")) {
        body.push(lines[i] ?? "");
        i += 1;
      }
      i += 1;
      out.push(<CodeBlock key={key()} code={body.join("\n")} lang={fence[2] ?? ""} />);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      // Inside an answer, below the page's h1 and the answer's own level: # is h3.
      const level = Math.min(6, (heading[1] ?? "#").length + 2);
      const Tag = `h${level}` as "h3" | "h4" | "h5" | "h6";
      out.push(
        <Tag key={key()} className="mb-1 mt-3 font-semibold first:mt-0">
          {inline(heading[2] ?? "", renderText, key())}
        </Tag>,
      );
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      out.push(<hr key={key()} className="my-3 border-slate-200 dark:border-slate-700" />);
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const body: string[] = [];
      while (i < lines.length && (lines[i] ?? "").trim() !== "" && QUOTE.test(lines[i] ?? "")) {
        body.push(QUOTE.exec(lines[i] ?? "")?.[1] ?? "");
        i += 1;
      }
      out.push(
        <blockquote key={key()} className="my-2 border-l-4 border-slate-300 pl-3 text-slate-600 dark:border-slate-600 dark:text-slate-300">
          {blocks(body, renderText, key())}
        </blockquote>,
      );
      continue;
    }
    const item = ITEM.exec(line);
    if (item) {
      const ordered = /\d/.test(item[2] ?? "");
      const start = ordered ? parseInt(item[2] ?? "1", 10) : undefined;
      const items: string[][] = [];
      while (i < lines.length) {
        const current = lines[i] ?? "";
        const m = ITEM.exec(current);
        if (m && /\d/.test(m[2] ?? "") === ordered) {
          const indent = (m[1] ?? "").length + (m[2] ?? "").length + 1;
          const body = [m[3] ?? ""];
          i += 1;
          // The item's further lines: indented ones, and lazy continuations of its paragraph.
          while (i < lines.length) {
            const next = lines[i] ?? "";
            if (next.trim() === "") {
              const after = lines[i + 1] ?? "";
              if (/^\s{2,}\S/.test(after) && !ITEM.test(after)) {
                body.push("");
                i += 1;
                continue;
              }
              break;
            }
            if (/^\s{2,}/.test(next)) {
              body.push(next.slice(Math.min(indent, next.length - next.trimStart().length)));
            } else if (!startsBlock(next)) {
              body.push(next);
            } else {
              break;
            }
            i += 1;
          }
          items.push(body);
          // A blank line between items keeps the list going.
          if ((lines[i] ?? "").trim() === "" && ITEM.test(lines[i + 1] ?? "")) i += 1;
          continue;
        }
        break;
      }
      const children = items.map((body, n) => (
        <li key={n}>{blocks(body, renderText, `${key()}.${n}`)}</li>
      ));
      out.push(
        ordered ? (
          <ol key={key()} start={start === 1 ? undefined : start} className="my-2 list-decimal space-y-1 pl-6">
            {children}
          </ol>
        ) : (
          <ul key={key()} className="my-2 list-disc space-y-1 pl-6">
            {children}
          </ul>
        ),
      );
      continue;
    }
    if (line.includes("|") && TABLE_SEPARATOR.test(lines[i + 1] ?? "") && (lines[i + 1] ?? "").includes("-")) {
      const head = cells(line);
      const rows: string[][] = [];
      i += 2;
      while (i < lines.length && (lines[i] ?? "").includes("|") && (lines[i] ?? "").trim() !== "") {
        rows.push(cells(lines[i] ?? ""));
        i += 1;
      }
      const k = key();
      out.push(
        <div key={k} tabIndex={0} className="my-2 overflow-x-auto">
          <table className="min-w-full border-collapse text-left text-xs">
            <thead>
              <tr>
                {head.map((h, c) => (
                  <th key={c} className="border border-slate-200 px-2 py-1 font-semibold dark:border-slate-700">
                    {inline(h, renderText, `${k}.h${c}`)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row, r) => (
                <tr key={r}>
                  {head.map((_, c) => (
                    <td key={c} className="border border-slate-200 px-2 py-1 align-top dark:border-slate-700">
                      {inline(row[c] ?? "", renderText, `${k}.${r}.${c}`)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>,
      );
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && (lines[i] ?? "").trim() !== "" && (para.length === 0 || !startsBlock(lines[i] ?? ""))) {
      para.push((lines[i] ?? "").trim());
      i += 1;
    }
    out.push(
      <p key={key()} className="my-2 first:mt-0 last:mb-0">
        {inline(para.join("\n"), renderText, key())}
      </p>,
    );
  }
  return out;
}

/** Renders Markdown `text` as React elements (see the module's comment for what is safe). */
export function Markdown({ text, renderText = plain }: { text: string; renderText?: TextRenderer }) {
  return <>{blocks(text.replace(/\r\n?/g, "\n").split("\n"), renderText, "b")}</>;
}
