"""Keyword search: SQLite FTS5 (BM25) over chunk text, title and metadata, inside the store.

FTS5 lives in the same SQLite file and changes in the same transactions as the chunks, so the
keyword index can never disagree with the store. The metadata column holds the publisher,
domain, authors and the publication month in words, so that questions such as "as reported
by TechCrunch in October 2023" match on it; it is never part of a passage's text.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from rag.answer import STOPWORDS
from rag.documents import Article, Filters, domain_of

FTS_SCHEMA = ("CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
              "text, title, meta, tokenize='porter unicode61 remove_diacritics 2')")
# BM25 column weights for (text, title, meta)
WEIGHTS = (1.0, 0.5, 0.5)

_TERM = re.compile(r"\w+", re.UNICODE)


def meta_text(article: Article) -> str:
    parts = [article.source_name, article.domain, article.author or ""]
    if article.published_date:
        d = article.published_date
        parts.append(f"{d:%B} {d.year} {d.isoformat()}")
    return " ".join(p for p in parts if p)


def match_expression(question: str) -> str | None:
    """An FTS5 query OR-ing the question's content words (quoted, so no syntax leaks in)."""
    seen: dict[str, None] = {}
    for word in _TERM.findall(question.lower()):
        if word not in STOPWORDS and word not in seen:
            seen[word] = None
    if not seen:
        return None
    return " OR ".join(f'"{w}"' for w in seen)


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
            parts.append("(lower(d.source) = lower(?) OR d.domain = ? OR d.domain LIKE ?)")
            args.extend([s, dom, f"%.{dom}"])
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
