"""The sentences of each article, stored as spans of its body (no text of their own).

Ingest splits every body once; the in-memory BM25 index scores these sentences (a gold fact
is one sentence, and a question paraphrases it), and a passage's highlight is picked among
the sentences inside its chunk without splitting it again.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from rag.core.documents import Article
from rag.text.sentences import sentence_spans


def index_document(db: sqlite3.Connection, article: Article) -> None:
    """Store the sentence spans of an (already inserted) article."""
    db.executemany("INSERT INTO sentences(document_id, char_start, char_end) VALUES (?,?,?)",
                   [(article.document_id, start, end)
                    for start, end in sentence_spans(article.body)])


def unindex_documents(db: sqlite3.Connection, where: str, args: list[Any]) -> None:
    """Remove the sentences of the documents selected by ``where`` (over documents)."""
    db.execute(f"DELETE FROM sentences WHERE document_id IN (SELECT document_id FROM documents "
               f"WHERE {where})", args)
