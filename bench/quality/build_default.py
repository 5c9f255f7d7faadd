#!/usr/bin/env python3
"""Builds Berth's default retrieval-quality collection, in BEIR's format, from the docstrings
of the Python standard library installed on this machine.

Where the labels come from: every function, class and method of the standard library whose
docstring follows PEP 257 -- a one-line summary, a blank line, then the rest -- gives one
document and one query. The query is the summary ("Return the base name of pathname path.");
the document is the object's qualified name as its title and the rest of the docstring, with
the summary removed, as its text. The one relevant document of a query (score 1 in
qrels/test.tsv) is the docstring its summary was cut from. Nobody in the project wrote the text
or chose the pairs: the Python developers wrote both halves, for readers, long before this
benchmark; the script takes every docstring that has the structure and keeps a deterministic
sample (ordered by a SHA-256 of the qualified name), so no pair is hand-picked and no synonym
table exists.

Offline and deterministic: the sources are read with `ast` (nothing is imported or run), in
sorted order, from the standard library of the python3 that runs the script; the same Python
version gives the same collection. meta.json records the version and the counts.

Filters, all mechanical: summaries of 4 to 40 words; a rest of at least 200 characters; no
test suites, no private (_underscore) objects or modules, no `idlelib`, `lib2to3`, `turtledemo`,
`ensurepip`, `site-packages`; a summary that occurs twice (in two objects) is dropped as a query,
since its label would be ambiguous; a document text that occurs twice is kept once.

Usage: build_default.py OUT_DIR [--docs N] [--queries M]
  (defaults: 3000 documents, 500 queries). The queries' documents are always in the corpus;
  the rest of the corpus is the next documents of the same order (distractors), so a small
  slice (--docs 150 --queries 50) is a prefix of the same sample.
"""

import argparse
import ast
import hashlib
import json
import os
import sys
import sysconfig

SKIP_DIRS = {
    "test", "tests", "idlelib", "lib2to3", "turtledemo", "ensurepip", "site-packages",
    "dist-packages", "__pycache__", "config-3", "tkinter", "venv", "__phello__",
}


def sources(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIP_DIRS and not d.startswith(("_", "config-", "."))
        )
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith("_") and not name.startswith("test"):
                yield os.path.join(dirpath, name)


def module_name(root, path):
    rel = os.path.relpath(path, root)[: -len(".py")]
    parts = rel.split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def objects(tree, prefix):
    """(qualified name, docstring) of every public function, class and method, including those
    defined under an `if` or `try` (platform variants)."""
    for node in body(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name.startswith("_"):
                continue
            name = f"{prefix}.{node.name}"
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield name, doc
            if isinstance(node, ast.ClassDef):
                yield from objects(node, name)


def body(node):
    for child in node.body:
        if isinstance(child, (ast.If, ast.Try)):
            yield from body(child)
            for extra in (getattr(child, "orelse", []), getattr(child, "finalbody", [])):
                for c in extra:
                    yield from body(ast.Module(body=[c], type_ignores=[]))
            for handler in getattr(child, "handlers", []):
                yield from body(handler)
        else:
            yield child


def split(doc):
    """(summary, rest) of a PEP 257 docstring, or None."""
    paragraphs = doc.strip().split("\n\n", 1)
    if len(paragraphs) != 2:
        return None
    summary = " ".join(line.strip() for line in paragraphs[0].splitlines()).strip()
    rest = paragraphs[1].strip()
    if not 4 <= len(summary.split()) <= 40 or len(rest) < MIN_TEXT:
        return None
    return summary, rest


MIN_TEXT = 100


def candidates(root):
    """(name, summary or None, text) of every documented object, in a fixed order."""
    seen_names, seen_text = set(), set()
    found = []
    for path in sources(root):
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), filename=path)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for name, doc in objects(tree, module_name(root, path)):
            parts = split(doc)
            summary, text = parts if parts else (None, doc.strip())
            if name in seen_names or text in seen_text or len(text) < MIN_TEXT:
                continue
            seen_names.add(name)
            seen_text.add(text)
            found.append((name, summary, text))
    return sorted(found, key=lambda c: hashlib.sha256(c[0].encode()).hexdigest())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--docs", type=int, default=3000)
    p.add_argument("--queries", type=int, default=500)
    a = p.parse_args()
    root = sysconfig.get_paths()["stdlib"]
    found = candidates(root)
    times = {}
    for _, summary, _ in found:
        if summary:
            times[summary.lower()] = times.get(summary.lower(), 0) + 1
    queries = [c for c in found if c[1] and times[c[1].lower()] == 1][: a.queries]
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
        for name, _, text in corpus:
            f.write(json.dumps({"_id": ids[name], "title": name, "text": text}) + "\n")
    with open(os.path.join(a.out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for i, (_, summary, _) in enumerate(queries):
            f.write(json.dumps({"_id": f"q{i}", "text": summary}) + "\n")
    with open(os.path.join(a.out, "qrels", "test.tsv"), "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for i, (name, _, _) in enumerate(queries):
            f.write(f"q{i}\t{ids[name]}\t1\n")
    meta = {
        "source": "docstrings of the Python standard library: summary line = query, "
        "the rest = its one relevant document; other docstrings = distractors",
        "python": sys.version.split()[0],
        "documents": len(corpus),
        "queries": len(queries),
        "documented_objects": len(found),
    }
    with open(os.path.join(a.out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
