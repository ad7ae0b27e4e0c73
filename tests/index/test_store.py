"""The on-disk index: self-describing, refuses other models, FAISS is derived and rebuildable."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import IndexMismatch, NotFound
from rag.index.embedded.store import Store

from conftest import open_service
from hash_embedder import HashEmbedder
from helpers import articles


def build(tmp_path, embedder, n=4):
    svc = open_service(tmp_path, embedder, chunk_tokens=60, chunk_overlap=10)
    svc.ingest_articles(articles(n))
    return svc


def search_all(store, embedder, text="Story 2 about topic 2"):
    index, _ = store.vectors()
    return list(index.search(embedder.encode([text])[0], 100)[1])


def test_other_model_is_refused_with_the_rebuild_command(tmp_path, hash_embedder):
    build(tmp_path, hash_embedder)
    other = HashEmbedder(name="test/other-model")
    with pytest.raises(IndexMismatch) as err:
        open_service(tmp_path, other, chunk_tokens=60, chunk_overlap=10)
    assert "test/hash-embedder" in str(err.value) and "--rebuild" in str(err.value)


def test_other_chunking_is_refused_for_writes_only(tmp_path, hash_embedder):
    build(tmp_path, hash_embedder)
    with pytest.raises(IndexMismatch, match="chunk_tokens=60"):
        open_service(tmp_path, hash_embedder, chunk_tokens=90, chunk_overlap=10)
    from rag.core.config import Settings
    from rag.service import Service

    reader = Service.open(Settings(index_dir=tmp_path, model=hash_embedder.name, chunk_tokens=90),
                          embedder=hash_embedder)
    assert reader.stats()["chunk_tokens"] == 60


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(NotFound, match="rag ingest"):
        Store.open(tmp_path / "nothing")


def test_missing_faiss_file_is_rebuilt_from_stored_embeddings(tmp_path, hash_embedder):
    svc = build(tmp_path, hash_embedder)
    expected = search_all(svc.index, hash_embedder)
    for f in tmp_path.glob("vectors-*.faiss"):
        f.unlink()
    encoded = hash_embedder.encoded
    fresh = Store.open(tmp_path)
    assert search_all(fresh, hash_embedder) == expected
    assert hash_embedder.encoded == encoded + 1  # only the query was embedded


def test_corrupt_faiss_file_is_rebuilt(tmp_path, hash_embedder):
    svc = build(tmp_path, hash_embedder)
    expected = search_all(svc.index, hash_embedder)
    for f in tmp_path.glob("vectors-*.faiss"):
        f.write_bytes(b"not a faiss index")
    assert search_all(Store.open(tmp_path), hash_embedder) == expected


def test_stale_faiss_file_catches_up_from_the_delta(tmp_path, hash_embedder):
    svc = build(tmp_path, hash_embedder, n=4)
    [old_file] = tmp_path.glob("vectors-*.faiss")
    stale = old_file.read_bytes()
    more = articles(6, version="v2")  # 4 updated, 2 added
    svc.ingest_articles(more)
    for f in tmp_path.glob("vectors-*.faiss"):
        f.unlink()
    old_file.write_bytes(stale)  # as if the process died before saving the new file
    reopened = Store.open(tmp_path)
    index, gen = reopened.vectors()
    assert gen == svc.index.generation
    assert len(index) == reopened.counts()["chunks"]
    assert search_all(reopened, hash_embedder) == search_all(svc.index, hash_embedder)


def test_reader_follows_writes_of_another_process(tmp_path, hash_embedder):
    writer = build(tmp_path, hash_embedder, n=2)
    reader = Store.open(tmp_path)
    assert len(reader.vectors()[0]) == writer.index.counts()["chunks"]
    writer.ingest_articles(articles(5))
    assert len(reader.vectors()[0]) == writer.index.counts()["chunks"]
    writer.index.delete([a.url for a in articles(5)])
    assert len(reader.vectors()[0]) == 0


def test_filters_select_chunk_ids(tmp_path, hash_embedder):
    from datetime import date

    from rag.core.documents import Filters

    svc = build(tmp_path, hash_embedder, n=6)
    store = svc.index
    every = store.allowed_chunk_ids(Filters(sources=("Example News",)))
    assert len(every) == store.counts()["chunks"]
    assert len(store.allowed_chunk_ids(Filters(sources=("example.com",)))) == len(every)
    assert len(store.allowed_chunk_ids(Filters(sources=("other.org",)))) == 0
    by_author = store.allowed_chunk_ids(Filters(authors=("writer 1",)))  # case-insensitive
    docs = {store.chunk_rows(list(by_author))[int(i)]["document_id"] for i in by_author}
    assert docs == {a.document_id for a in articles(6) if a.author == "Writer 1"}
    dated = store.allowed_chunk_ids(Filters(published_after=date(2023, 10, 3),
                                            published_before=date(2023, 10, 4)))
    rows = store.chunk_rows(list(dated))
    assert {r["published_date"] for r in rows.values()} == {"2023-10-03", "2023-10-04"}
    assert store.allowed_chunk_ids(Filters()) is None
    assert isinstance(every, np.ndarray)


def test_kept_filter_answers_are_brought_up_to_each_write(tmp_path, hash_embedder):
    """A filter's chunk ids are kept and, after a write, brought up by the chunks written and
    deleted since (a new lookup is 0.1-0.2 s at a million chunks): always the same ids as a
    store that kept nothing."""
    from dataclasses import replace
    from datetime import date

    from rag.core.documents import Filters

    svc = build(tmp_path, hash_embedder, n=6)
    store = svc.index
    filters = [Filters(sources=("Example News",)), Filters(authors=("writer 1",)),
               Filters(published_after=date(2023, 10, 3), published_before=date(2023, 10, 8)),
               Filters(sources=("Other Desk",)),
               Filters(sources=("Other Desk",), authors=("writer 0",))]

    def same_as_fresh():
        for f in filters:
            ids = store.allowed_chunk_ids(f)
            assert store._allowed[f][0] == store.generation
            assert np.array_equal(ids, Store(tmp_path).allowed_chunk_ids(f)), f
            assert np.all(np.diff(ids) > 0)

    same_as_fresh()
    svc.ingest_articles(articles(8)[6:])  # new articles
    same_as_fresh()
    svc.ingest_articles(articles(8, "v2")[1:2])  # one replaced by a new version
    same_as_fresh()
    moved = articles(8)
    svc.ingest_articles([replace(moved[3], source="Other Desk"),  # to another publisher,
                         replace(moved[0], source="Other Desk", published_date=date(2023, 10, 5))])
    same_as_fresh()
    assert len(store.allowed_chunk_ids(filters[3])) > 0
    store.delete([moved[3].url, moved[7].url])
    same_as_fresh()
    svc.ingest_articles(articles(8, "v3"))  # everything again
    same_as_fresh()
    assert len(store.allowed_chunk_ids(filters[3])) == 0


def _open_db_files(store) -> int:
    """This process's open descriptors on the store's SQLite files (db, -wal, -shm)."""
    return sum(1 for fd in Path("/proc/self/fd").iterdir()
               if str(fd.resolve(strict=False)).startswith(str(store.db_path)))


def test_close_closes_every_threads_connection(tmp_path, hash_embedder):
    build(tmp_path, hash_embedder).close()
    store = Store.open(tmp_path)
    opened = _open_db_files(store)  # this thread's connection, from the open
    done, ready = threading.Event(), threading.Barrier(4)

    def read():
        store.meta()
        ready.wait()
        done.wait()  # alive until the store is closed

    threads = [threading.Thread(target=read, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=30)
        assert _open_db_files(store) > opened > 0
        store.close()
        assert _open_db_files(store) == 0
    finally:
        done.set()


def test_finished_threads_leave_no_connections_open(tmp_path, hash_embedder):
    build(tmp_path, hash_embedder).close()
    store = Store.open(tmp_path)
    try:
        counts = []
        for _ in range(6):  # each thread reads once and ends
            t = threading.Thread(target=store.meta)
            t.start()
            t.join()
            counts.append(_open_db_files(store))
        # at most the last thread's connection (and a descriptor SQLite keeps for reuse)
        assert counts[-1] == counts[1]
    finally:
        store.close()
