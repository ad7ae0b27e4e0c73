"""Helpers the tests share that are not fixtures: sample articles, gold rejections, a small
disk. (Fixtures are in conftest.py.)"""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag.core.documents import Article
from rag.index.base import IndexParams
from rag.index.embedded.store import Store
from rag.ingest.sources import parse_bytes

from conftest import ROOT, SEED_FILE, open_service


def articles(n: int, version: str = "v1"):
    records = [{"url": f"https://news.example.com/{i}", "title": f"Story {i}",
                "author": f"Writer {i % 3}", "source": "Example News",
                "published_at": f"2023-10-{i + 1:02d}T10:00:00+00:00",
                "body": f"Story {i} {version} about topic {i}. " * 40 + "The end."}
               for i in range(n)]
    return parse_bytes(json.dumps(records).encode(), "batch.json").articles


SEED = SEED_FILE.read_text(encoding="utf-8")


def seed_with(**changes: str) -> str:
    text = SEED
    for tag, value in changes.items():
        start = text.index(f"<{tag}>") + len(tag) + 2
        end = text.index(f"</{tag}>")
        text = text[:start] + value + text[end:]
    return text


REJECTIONS = [
    ("no-url.txt", seed_with(URL=""), "missing URL"),
    ("relative-url.txt", seed_with(URL="/politics/x"), "not an absolute http(s) URL"),
    ("empty-body.txt", seed_with(CONTENT="\n  \n"), "empty body"),
    ("bad-date.txt", seed_with(PUBLISHED_DATE="2024-02-30"), "impossible or malformed date"),
    ("garbled-date.txt", seed_with(PUBLISHED_DATE="last Tuesday"), "impossible or malformed date"),
    ("unclosed.txt", SEED.replace("</CONTENT>", ""), "<CONTENT> is never closed"),
    ("nested.txt", SEED.replace("</TITLE>", ""), "inside unclosed <TITLE>"),
    ("stray-close.txt", "</TITLE>" + SEED, "never opened"),
    ("twice.txt", SEED + "<URL>https://x.com/</URL>", "appears twice"),
    ("unknown-tag.txt", SEED + "\n<FOOTER>x</FOOTER>", "unknown tag <FOOTER>"),
    ("plain.txt", "Just some text with no metadata.", "missing URL"),
    ("bad.json", '{"url": "https://x.com/a", "body": ', "malformed JSON"),
    ("scalar.json", "42", "must be an article object"),
    ("table.csv", "url,body\nhttps://x.com,hi", "not a known format"),
    ("bad-yaml.md", "---\nurl: [unclosed\n---\nbody", "malformed YAML"),
]


@contextmanager
def small_disk(path: Path, mb: int):
    """A tmpfs of ``mb`` MB at ``path`` (needs root, as CI has; skipped elsewhere)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk; the file to remove to free it again."""
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def build(index: Path, embedder, n: int = 4):
    svc = open_service(index, embedder, chunk_tokens=60, chunk_overlap=10)
    svc.ingest_articles(articles(n))
    return svc


def params_of(store: Store, **changes) -> IndexParams:
    meta = store.meta()
    values = {"model": meta["model"], "dim": int(meta["dim"]),
              "chunk_tokens": int(meta["chunk_tokens"]),
              "chunk_overlap": int(meta["chunk_overlap"]), **changes}
    return IndexParams(**values)


@contextmanager
def holder(index: Path, how: str = "open"):
    """Another process that has the index open (``open``) or holds SQLite's write lock
    (``write``) until the block ends."""
    code = {"open": "from rag.index.embedded.store import Store; "
                    f"s = Store.open({str(index)!r}); s.meta()",
            "write": f"import sqlite3; db = sqlite3.connect({str(index / 'rag.sqlite3')!r}, "
                     "isolation_level=None); db.execute('BEGIN IMMEDIATE')"}[how]
    proc = subprocess.Popen([sys.executable, "-c", code + "; print('ready', flush=True); "
                             "import sys; sys.stdin.read()"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


def snapshot(index: Path) -> tuple[int, int, str]:
    db = sqlite3.connect(index / "rag.sqlite3")
    try:
        gen = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]
        docs = db.execute("SELECT count(*) FROM documents").fetchone()[0]
        urls = ",".join(r[0] for r in db.execute("SELECT url FROM documents ORDER BY url"))
    finally:
        db.close()
    return int(gen), docs, urls


def volcano(n: int) -> Article:
    return Article(url=f"https://example.org/v/{n}", title=f"Volcano {n}",
                   body=f"Volcano number {n} erupted and closed {n} airports. " * 30,
                   source="Example Wire")
