"""Copy an embedded index (SQLite + FAISS) into Milvus without re-embedding anything.

Articles, chunk spans and the stored vectors are written as they are, in batches, through the
same ``write`` the ingest uses; each article keeps its content hash, so a later ``rag ingest``
of the same sources finds everything unchanged. Re-running a migration replaces what it
copied before (writes are by document id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

from rag.core.documents import Article, Chunk
from rag.index.base import DocumentWrite, Index
from rag.index.embedded.store import Store

BATCH = 64  # articles per write


def document_writes(store: Store, batch: int = BATCH) -> Iterator[list[DocumentWrite]]:
    for docs, chunks in store.stored_articles(batch):
        writes = []
        for d in docs:
            article = Article(
                url=d["url"], title=d["title"], body=d["body"], author=d["author"],
                published_date=date.fromisoformat(d["published_date"])
                if d["published_date"] else None,
                published_at=d["published_at"], source=d["source"], summary=d["summary"],
                highlights=d["highlights"], category=d["category"], origin=d["origin"] or "")
            own = chunks.get(d["document_id"], [])
            writes.append(DocumentWrite(
                article, [Chunk(c["ordinal"], c["char_start"], c["char_end"], c["text"],
                                c["n_tokens"]) for c in own],
                [c["embed_hash"] for c in own], content_hash=d["content_hash"]))
        yield writes


def migrate(source: Store, target: Index,
            progress: Callable[[int, int], None] | None = None) -> int:
    """Copy every article of ``source`` into ``target`` (a Milvus index); returns how many."""
    total = source.counts()["documents"]
    done = 0
    for writes in document_writes(source):
        hashes = [h for w in writes for h in w.embed_hashes]
        target.write(writes, source.cached_embeddings(hashes))
        done += len(writes)
        if progress:
            progress(done, total)
    target.save_vectors()
    return done
