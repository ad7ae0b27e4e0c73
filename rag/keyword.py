"""Keyword search: SQLite FTS5 (BM25) over chunk text, title and metadata, inside the store.

FTS5 lives in the same SQLite file and changes in the same transactions as the chunks, so the
keyword index can never disagree with the store. The metadata column holds the publisher,
domain, authors and the publication month in words, so that questions such as "as reported
by TechCrunch in October 2023" match on it; it is never part of a passage's text.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from typing import Any

from rag.answer import STOPWORDS
from rag.chunking import sentence_spans
from rag.documents import Article, Filters, domain_of

# Hyphenated compounds stay one token: "longer-range" is not the noun "range".
TOKENIZER = "tokenize=\"porter unicode61 remove_diacritics 2 tokenchars '-'\""
SCHEMA = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, title, meta, {TOKENIZER})",
    # sentence-level index: a gold fact is one sentence, and a question paraphrases it
    "CREATE TABLE IF NOT EXISTS sentences(id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "document_id TEXT NOT NULL REFERENCES documents(document_id) ON DELETE CASCADE, "
    "char_start INTEGER NOT NULL, char_end INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sentences_doc ON sentences(document_id)",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS sentences_fts USING fts5(text, {TOKENIZER})",
]
# BM25 column weights for (text, title, meta)
WEIGHTS = (1.0, 0.5, 0.5)

_TERM = re.compile(r"\w+(?:-\w+)*", re.UNICODE)


def meta_words(source: str, domain: str, author: str | None, published: date | None,
               iso: bool = True) -> str:
    """Publisher, domain, authors and the publication month in words (and the ISO date)."""
    parts = [source, domain, author or ""]
    if published:
        parts.append(f"{published:%B} {published.year}"
                     + (f" {published.isoformat()}" if iso else ""))
    return " ".join(p for p in parts if p)


def meta_text(article: Article) -> str:
    return meta_words(article.source_name, article.domain, article.author,
                      article.published_date)


def match_expression(question: str) -> str | None:
    """An FTS5 query OR-ing the question's content words (quoted, so no syntax leaks in)."""
    seen: dict[str, None] = {}
    for word in _TERM.findall(question.lower()):
        if word not in STOPWORDS and word not in seen:
            seen[word] = None
    if not seen:
        return None
    return " OR ".join(f'"{w}"' for w in seen)


def index_document(db: sqlite3.Connection, article: Article) -> None:
    """Add an article's (already inserted) chunks and its sentences to the keyword indexes."""
    db.execute("INSERT INTO chunks_fts(rowid, text, title, meta) SELECT id, text, ?, ? "
               "FROM chunks WHERE document_id = ?",
               (article.title, meta_text(article), article.document_id))
    body = article.body
    for start, end in sentence_spans(body):
        cur = db.execute("INSERT INTO sentences(document_id, char_start, char_end) VALUES (?,?,?)",
                         (article.document_id, start, end))
        db.execute("INSERT INTO sentences_fts(rowid, text) VALUES (?, ?)",
                   (cur.lastrowid, body[start:end]))


def unindex_documents(db: sqlite3.Connection, where: str, args: list[Any]) -> None:
    """Remove from the keyword indexes the documents selected by ``where`` (over documents)."""
    db.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE document_id "
               f"IN (SELECT document_id FROM documents WHERE {where}))", args)
    db.execute("DELETE FROM sentences_fts WHERE rowid IN (SELECT id FROM sentences WHERE "
               f"document_id IN (SELECT document_id FROM documents WHERE {where}))", args)
    db.execute(f"DELETE FROM sentences WHERE document_id IN (SELECT document_id FROM documents "
               f"WHERE {where})", args)


def filter_sql(filters: Filters) -> tuple[str, list[Any]]:
    """A WHERE clause over ``documents d`` for ``filters`` (``1`` when there are none)."""
    clauses: list[str] = []
    args: list[Any] = []
    if filters.authors:
        marks = ",".join("?" * len(filters.authors))
        clauses.append("d.document_id IN (SELECT document_id FROM document_authors "
                       f"WHERE name IN ({marks}))")
        args.extend(a.strip() for a in filters.authors)
    if filters.sources:
        parts = []
        for s in filters.sources:
            s = s.strip()
            dom = domain_of(s if "://" in s else f"http://{s}")
            # a subdomain by its suffix, compared exactly (a LIKE pattern would read the
            # user's "%" and "_" as wildcards, and a long one is "too complex" for SQLite)
            parts.append("(lower(d.source) = lower(?) OR d.domain = ? OR "
                         "substr(d.domain, -?) = ?)")
            args.extend([s, dom, len(dom) + 1, f".{dom}"])
        clauses.append("(" + " OR ".join(parts) + ")")
    if filters.published_after:
        clauses.append("d.published_date >= ?")
        args.append(filters.published_after.isoformat())
    if filters.published_before:
        clauses.append("d.published_date <= ?")
        args.append(filters.published_before.isoformat())
    return (" AND ".join(clauses) or "1"), args


def search(db: sqlite3.Connection, question: str, k: int,
           filters: Filters) -> list[tuple[int, float]]:
    """Top ``k`` (chunk id, BM25 score; higher is better) for ``question``."""
    expr = match_expression(question)
    if expr is None:
        return []
    where, args = filter_sql(filters)
    weights = ", ".join(str(w) for w in WEIGHTS)
    join = "" if filters.is_empty() else (
        "JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.document_id = c.document_id")
    rows = db.execute(
        f"SELECT f.rowid, -bm25(chunks_fts, {weights}) AS score FROM chunks_fts f {join} "
        f"WHERE chunks_fts MATCH ? AND {where} ORDER BY bm25(chunks_fts, {weights}) LIMIT ?",
        [expr, *args, k]).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def sentence_search(db: sqlite3.Connection, question: str, k: int,
                    filters: Filters) -> list[tuple[int, float]]:
    """Chunks ranked by the BM25 score of the best-matching sentence they contain."""
    expr = match_expression(question)
    if expr is None:
        return []
    where, args = filter_sql(filters)
    join = "" if filters.is_empty() else (
        "JOIN sentences s0 ON s0.id = f.rowid JOIN documents d ON d.document_id = s0.document_id")
    rows = db.execute(
        "SELECT c.id, max(hit.score) AS score FROM ("
        f"  SELECT f.rowid AS sid, -bm25(sentences_fts) AS score FROM sentences_fts f {join}"
        f"  WHERE sentences_fts MATCH ? AND {where} ORDER BY bm25(sentences_fts) LIMIT ?) hit "
        "JOIN sentences s ON s.id = hit.sid "
        "JOIN chunks c ON c.document_id = s.document_id "
        "  AND c.char_start <= s.char_start AND s.char_end <= c.char_end "
        "GROUP BY c.id ORDER BY score DESC, c.id LIMIT ?",
        [expr, *args, k * 2, k]).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]
