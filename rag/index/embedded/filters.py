"""Filters as SQL over the documents table (the Milvus backend writes the same as a Milvus
expression; the contract tests check that both select the same articles)."""

from __future__ import annotations

from typing import Any

from rag.core.documents import Filters, domain_of


def filter_sql(filters: Filters) -> tuple[str, list[Any]]:
    """A WHERE clause over ``documents d`` for ``filters`` (``1`` when there are none):
    authors case-insensitively; a source as the publisher's name (any case) or the URL's
    domain, subdomains included; dates inclusive."""
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
