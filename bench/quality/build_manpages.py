#!/usr/bin/env python3
"""Builds a second retrieval-quality collection, in BEIR's format, from the section-1 manual
pages installed on this machine (a collection of a different kind than the docstrings: reference
documentation of commands, long, option-heavy, written for the terminal).

Where the labels come from: every man page's NAME line says what the command does in one line
("cp - copy files and directories"). The query is that description ("copy files and
directories"); the document is the command's name as its title and the rest of the page (from
SYNOPSIS on) as its text; its one relevant document (score 1 in qrels/test.tsv) is the page the
description was cut from. The pages' authors wrote both halves, for readers; nothing is
hand-picked: pages are taken in the order of a SHA-256 of their file name.

Rendered with `man -l` (MANWIDTH=80, no hyphenation or justification) and `col -bx`; each text
is cut to its first --max-chars characters (default 4000, about four passages), which bounds the
embedding work and keeps the part a reader would see first. The set of pages depends on the
packages installed: meta.json records how many pages there were and which were taken.

Filters, all mechanical: at most --per-family pages (default 10) of one command family (the file
name up to its first `_`, `-` or `.`: gcloud's 16,000 generated pages are one family), so that
one large suite does not make the collection; a NAME line `NAME - DESCRIPTION` with a description of 4 to 40 words; a
text of at least 300 characters; a description that occurs twice (two pages) is dropped as a
query, since its label would be ambiguous; a text that occurs twice is kept once.

Usage: build_manpages.py OUT_DIR [--docs N] [--queries M] [--max-chars C] [--per-family F] [--dir D]
  (defaults: 1000 documents, 300 queries, 4000 characters, 10 per family, /usr/share/man/man1).
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

NAME_LINE = re.compile(r"^\s*(\S.*?)\s+(?:-|\\-|—|–)\s+(.+)$")


def render(path):
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", LANG="C.UTF-8")
    try:
        out = subprocess.run(
            ["man", "--nj", "--nh", "-l", path],
            env=env, capture_output=True, timeout=20, check=False,
        ).stdout
        plain = subprocess.run(["col", "-bx"], input=out, capture_output=True, check=False).stdout
        return plain.decode("utf-8", errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return ""


def split(page):
    """(title, description, text) of a rendered page, or None."""
    lines = page.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == "NAME")
    except StopIteration:
        return None
    # The NAME paragraph: up to the next section heading (a line starting in column 0).
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1].isalpha()), len(lines))
    name = " ".join(l.strip() for l in lines[start + 1:end] if l.strip())
    m = NAME_LINE.match(name)
    if not m:
        return None
    title, description = m.group(1).strip(), m.group(2).strip()
    body = lines[end:]
    # The page's running footer (version, date, title) repeats its header: drop the last line.
    while body and not body[-1].strip():
        body.pop()
    if body:
        body.pop()
    text = "\n".join(l.rstrip() for l in body).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    return title, description, text


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--docs", type=int, default=1000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--max-chars", type=int, default=4000)
    p.add_argument("--dir", default="/usr/share/man/man1")
    p.add_argument("--per-family", type=int, default=10)
    a = p.parse_args()
    files = sorted(
        (f for f in os.listdir(a.dir) if not f.startswith(".")),
        key=lambda f: hashlib.sha256(f.encode()).hexdigest(),
    )
    found, seen_text, families = [], set(), {}
    # Rendering is the slow part: render in order until there are enough candidates (twice the
    # documents, so that dropping repeated descriptions still leaves enough queries).
    for f in files:
        if len(found) >= 2 * a.docs:
            break
        path = os.path.join(a.dir, f)
        if os.path.islink(path):
            continue  # an alias of another page
        family = re.split(r"[_.-]", f, maxsplit=1)[0]
        if families.get(family, 0) >= a.per_family:
            continue
        parts = split(render(path))
        if not parts:
            continue
        title, description, text = parts
        text = text[: a.max_chars]
        if not 4 <= len(description.split()) <= 40 or len(text) < 300 or text in seen_text:
            continue
        seen_text.add(text)
        families[family] = families.get(family, 0) + 1
        found.append((f, title, description, text))
        if len(found) % 200 == 0:
            print(f"build_manpages: {len(found)} pages rendered", file=sys.stderr)
    times = {}
    for _, _, d, _ in found:
        times[d.lower()] = times.get(d.lower(), 0) + 1
    queries = [c for c in found if times[c[2].lower()] == 1][: a.queries]
    chosen = {c[0] for c in queries}
    corpus = list(queries)
    for c in found:
        if len(corpus) >= max(a.docs, len(queries)):
            break
        if c[0] not in chosen:
            chosen.add(c[0])
            corpus.append(c)
    corpus.sort(key=lambda c: c[0])
    ids = {c[0]: f"d{i}" for i, c in enumerate(corpus)}
    os.makedirs(os.path.join(a.out, "qrels"), exist_ok=True)
    with open(os.path.join(a.out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for file, title, _, text in corpus:
            f.write(json.dumps({"_id": ids[file], "title": title, "text": text}) + "\n")
    with open(os.path.join(a.out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for i, (_, _, description, _) in enumerate(queries):
            f.write(json.dumps({"_id": f"q{i}", "text": description}) + "\n")
    with open(os.path.join(a.out, "qrels", "test.tsv"), "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for i, (file, _, _, _) in enumerate(queries):
            f.write(f"q{i}\t{ids[file]}\t1\n")
    meta = {
        "source": "section-1 manual pages of this machine: NAME description = query, the rest "
        "of the page = its one relevant document; other pages = distractors",
        "manpages": a.dir,
        "pages_installed": len(files),
        "max_chars": a.max_chars,
        "per_family": a.per_family,
        "documents": len(corpus),
        "queries": len(queries),
        "pages": sorted(c[0] for c in corpus),
    }
    with open(os.path.join(a.out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(json.dumps({k: v for k, v in meta.items() if k != "pages"}))


if __name__ == "__main__":
    main()
