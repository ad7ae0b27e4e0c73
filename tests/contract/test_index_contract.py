"""One contract, both backends: the embedded index (SQLite + FAISS + BM25) and Milvus (Lite)
give the same answers to the same writes, deletes and filters (a deterministic embedder:
this is plumbing, not retrieval quality)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from rag.core.documents import Article, Filters
from rag.core.errors import NotFound
from rag.index import Index, IndexLocation, IndexParams, open_index
from rag.ingest.pipeline import ingest

from hash_embedder import HashEmbedder

BACKENDS = ["embedded", "milvus"]
EMBEDDER = HashEmbedder()


def story(n: int, **fields) -> Article:
    values = {"url": f"https://news.example.com/{n}", "title": f"Story {n}",
              "body": f"Story {n} about harbour number {n}. " * 30 + "The end.",
              "author": f"Ana Ríos, Writer {n % 3}", "source": "Example News",
              "published_date": date(2023, 10, 1 + n)} | fields
    return Article(**values)


ARTICLES = [
    story(0),
    story(1, url="https://www.wire.example.org/1", source="Wire Service", author="Bo Li"),
    story(2, url="https://sub.wire.example.org/2", source="Wire Service"),
    story(3, source="Example News", author=None, published_date=None),
    story(4, url="https://percent%.example.net/4", source="Odd_Name"),
]


def write(index: Index, articles: list[Article]):
    return ingest(index, EMBEDDER, articles, chunk_tokens=60, chunk_overlap=10)


@pytest.fixture(scope="module", params=BACKENDS)
def index(request, tmp_path_factory) -> Iterator[Index]:
    where: Path = tmp_path_factory.mktemp(request.param)
    location = IndexLocation(request.param, where / "index", str(where / "milvus.db"))
    opened = open_index(location, IndexParams(EMBEDDER.name, EMBEDDER.dim, 60, 10),
                        create=True, for_writing=True)
    write(opened, ARTICLES)
    yield opened
    opened.close()


def ids(pairs) -> set[str]:
    return {d["document_id"] for d in pairs}


def expected(keep) -> set[str]:
    return {a.document_id for a in ARTICLES if keep(a)}


FILTERS = [
    (Filters(authors=("ana ríos",)), lambda a: a.author is not None and "Ana Ríos" in a.author),
    (Filters(authors=("Bo Li", "writer 1")), lambda a: a.author in ("Bo Li",)
     or (a.author or "").endswith("Writer 1")),
    (Filters(sources=("wire service",)), lambda a: a.source == "Wire Service"),
    (Filters(sources=("wire.example.org",)), lambda a: "wire.example.org" in a.url),
    (Filters(sources=("https://example.org",)), lambda a: ".example.org" in a.url),
    (Filters(sources=("news.example.com",)), lambda a: "news.example.com" in a.url),
    (Filters(sources=("%",)), lambda a: False),
    (Filters(sources=("_",)), lambda a: False),
    (Filters(sources=("odd_name",)), lambda a: a.source == "Odd_Name"),
    (Filters(published_after=date(2023, 10, 3)),
     lambda a: a.published_date is not None and a.published_date >= date(2023, 10, 3)),
    (Filters(published_before=date(2023, 10, 2)),
     lambda a: a.published_date is not None and a.published_date <= date(2023, 10, 2)),
    (Filters(published_after=date(2023, 10, 2), published_before=date(2023, 10, 2)),
     lambda a: a.published_date == date(2023, 10, 2)),
    (Filters(sources=("Example News",), published_after=date(2023, 10, 1)),
     lambda a: a.source == "Example News" and a.published_date is not None),
]


def test_writes_are_counted_and_read_back(index):
    counts = index.counts()
    assert counts["documents"] == len(ARTICLES) and counts["chunks"] >= len(ARTICLES)
    doc = index.document(ARTICLES[1].document_id)
    assert doc["url"] == ARTICLES[1].url and doc["body"] == ARTICLES[1].body
    assert doc["authors"] == ["Bo Li"] and doc["published_date"] == "2023-10-02"
    assert sorted(index.urls()) == sorted(a.url for a in ARTICLES)
    assert index.content_hashes() == {a.url: a.content_hash() for a in ARTICLES}
    assert sorted(index.sources()) == ["Example News", "Odd_Name", "Wire Service"]
    with pytest.raises(NotFound):
        index.document("no-such-id")


def filter_id(value) -> str:
    """A case's id from its filter's set fields (the same in every process, as pytest-xdist
    needs: a lambda's repr holds its address)."""
    if not isinstance(value, Filters):
        return "rule"
    return "|".join(f"{k}={v}" for k, v in vars(value).items() if v)


@pytest.mark.parametrize("filters,keep", FILTERS, ids=filter_id)
def test_every_filter_selects_the_same_articles(index, filters, keep):
    total, page = index.documents(100, 0, filters)
    assert ids(page) == expected(keep) and total == len(expected(keep))
    query = EMBEDDER.encode(["story about harbour"])[0]
    rows = index.chunk_rows([i for i, _ in index.dense_search(query, 200, filters)])
    assert {r["document_id"] for r in rows.values()} == expected(keep)
    ranked = index.keyword_ranking("story harbour", 200, filters)
    rows = index.chunk_rows([i for i, _ in ranked])
    assert {r["document_id"] for r in rows.values()} == expected(keep)


def test_a_page_is_newest_first_then_by_url(index):
    _, page = index.documents(3, 1)
    _, whole = index.documents(100, 0)
    assert [d["url"] for d in page] == [d["url"] for d in whole][1:4]
    dated = [d["published_date"] for d in whole if d["published_date"]]
    assert dated == sorted(dated, reverse=True)


def test_chunk_rows_are_exact_spans_with_their_sources(index):
    query = EMBEDDER.encode(["harbour number 2"])[0]
    rows = index.chunk_rows([i for i, _ in index.dense_search(query, 10, Filters())])
    bodies = {a.document_id: a for a in ARTICLES}
    for row in rows.values():
        article = bodies[row["document_id"]]
        assert article.body[row["char_start"]:row["char_end"]] == row["text"]
        assert row["url"] == article.url and row["title"] == article.title


def test_sentence_ranking_returns_chunks_of_matching_sentences(index):
    ranked = index.sentence_ranking("harbour number 4", 5, Filters())
    rows = index.chunk_rows([i for i, _ in ranked])
    assert ranked and rows[ranked[0][0]]["document_id"] == ARTICLES[4].document_id


def test_an_update_replaces_an_article_and_a_delete_removes_it(index):
    changed = story(9, url=ARTICLES[0].url, body="Entirely new text about lighthouses. " * 20)
    report = write(index, [changed, *ARTICLES[1:]])
    assert report.updated == [changed.url] and len(report.unchanged) == len(ARTICLES) - 1
    query = EMBEDDER.encode(["lighthouses"])[0]
    top = index.chunk_rows([index.dense_search(query, 1, Filters())[0][0]])
    assert next(iter(top.values()))["document_id"] == changed.document_id
    assert index.document(changed.document_id)["body"] == changed.body
    assert index.delete_document(changed.document_id) == changed.url
    with pytest.raises(NotFound):
        index.delete_document(changed.document_id)
    assert changed.url not in index.urls()
    assert index.counts()["documents"] == len(ARTICLES) - 1
    write(index, ARTICLES)  # as it was, for the other tests (module scope)
    assert index.counts()["documents"] == len(ARTICLES)


def test_a_changed_article_reuses_the_embeddings_it_shares(index):
    """Chunks whose text did not change keep their stored vectors (content-hash cache)."""
    body = ARTICLES[2].body + " One more closing line."
    changed = story(2, url=ARTICLES[2].url, source="Wire Service", body=body)
    report = write(index, [changed])
    assert report.updated == [changed.url]
    assert report.texts_cached >= 1 and report.texts_embedded >= 1
    write(index, ARTICLES)  # as it was
    assert index.document(ARTICLES[2].document_id)["body"] == ARTICLES[2].body


def test_the_backends_rank_the_same_chunks(tmp_path):
    """Beyond filters: the same writes give the same dense top 5 on both (exact search)."""
    results = {}
    for backend in BACKENDS:
        location = IndexLocation(backend, tmp_path / backend, str(tmp_path / "milvus.db"))
        opened = open_index(location, IndexParams(EMBEDDER.name, EMBEDDER.dim, 60, 10),
                            create=True, for_writing=True)
        try:
            write(opened, ARTICLES)
            query = EMBEDDER.encode(["harbour number 3 story"])[0]
            found = opened.dense_search(query, 5, Filters())
            rows = opened.chunk_rows([i for i, _ in found])
            # equal scores (repeated text) may come in either order: ties sorted here
            results[backend] = sorted((-round(s, 4), rows[i]["document_id"], rows[i]["ordinal"])
                                      for i, s in found)
        finally:
            opened.close()
    assert results["embedded"] == results["milvus"]
    assert np.isfinite([s for s, *_ in results["embedded"]]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_index_refused_on_open_is_closed(backend, tmp_path, monkeypatch):
    """A writer refused for another chunking leaves no client or connection behind."""
    from rag.core.errors import IndexMismatch
    from rag.index.embedded.store import Store
    from rag.index.milvus import MilvusStore

    location = IndexLocation(backend, tmp_path / "index", str(tmp_path / "milvus.db"))
    open_index(location, IndexParams(EMBEDDER.name, EMBEDDER.dim, 60, 10),
               create=True, for_writing=True).close()
    cls = MilvusStore if backend == "milvus" else Store
    closed: list[object] = []
    close = cls.close
    monkeypatch.setattr(cls, "close", lambda self: (closed.append(self), close(self))[1])
    with pytest.raises(IndexMismatch, match="chunk_tokens=60") as err:
        open_index(location, IndexParams(EMBEDDER.name, EMBEDDER.dim, 90, 10), for_writing=True)
    assert len(closed) == 1
    # the fix it names rebuilds this backend's index, not an embedded one beside it
    assert ("RAG_BACKEND=milvus" in str(err.value)) == (backend == "milvus")
