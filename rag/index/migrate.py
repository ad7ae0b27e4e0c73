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
from rag.core.errors import InvalidRequest
from rag.index.base import DocumentWrite, Index, IndexParams
from rag.index.embedded.store import Store
from rag.index.factory import IndexLocation, open_index

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


def copy_to_milvus(source: Index, uri: str, token: str = "",
                   progress: Callable[[int, int], None] | None = None
                   ) -> tuple[int, dict[str, int]]:
    """Copy ``source`` (an embedded index) into a Milvus index at ``uri``, created with the
    same parameters; returns the articles copied and the target's counts."""
    if not isinstance(source, Store):
        raise InvalidRequest("rag migrate copies an embedded index (RAG_BACKEND=embedded)")
    meta = source.meta()
    params = IndexParams(meta["model"], int(meta["dim"]), int(meta["chunk_tokens"]),
                         int(meta["chunk_overlap"]))
    target = open_index(IndexLocation("milvus", milvus_uri=uri, milvus_token=token),
                        params, create=True, for_writing=True)
    try:
        copied = migrate(source, target, progress)
        return copied, target.counts()
    finally:
        target.close()
