"""The keyword index of a changing store: segments caught up per write, merged in the back."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from rag.core.documents import Article, Filters
from rag.index.embedded.bm25 import segments
from rag.index.embedded.bm25.index import Dropped, LexicalIndex
from rag.index.embedded.bm25.segments import Policy

from conftest import open_service

WORDS = [
    "budget", "committee", "vote", "rocket", "launch", "coast", "jury", "trial", "verdict",
    "missile", "range", "border", "harvest", "storm", "flood", "bridge", "tunnel", "election",
    "ballot", "senate", "court", "appeal", "river"]


def article(n: int, source: str = "Example News") -> Article:
    words = [WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(24)]
    body = " ".join(f"{' '.join(words[i:i + 6]).capitalize()}." for i in range(0, 24, 6))
    return Article(url=f"https://example.com/{n}", title=f"Report {n}", body=body,
                   source=source, author=f"Writer {n}", published_date=date(2023, 10, 1))


@pytest.fixture
def svc(tmp_path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=16, chunk_overlap=0)
    svc.index._lexical.policy = Policy(small=0, fraction=100.0, max_segments=100)
    svc.ingest_articles([article(i) for i in range(8)])
    return svc


def fresh(store) -> LexicalIndex:
    with store._read() as db:
        return LexicalIndex(db)


def urls(store, ranking) -> list[str]:
    rows = store.chunk_rows([i for i, _ in ranking])
    return [rows[i]["url"].rsplit("/", 1)[1] for i, _ in ranking]


QUESTIONS = ["budget vote", "missile range border", "storm flood", "zeppelin",
             "court appeal verdict", "senate ballot election"]


def test_a_write_is_caught_up_by_a_segment_scored_with_the_base_statistics(svc):
    store = svc.index
    base = store.lexical()
    assert base.segments == 0
    svc.ingest_articles([Article(url="https://example.com/new", title="Zeppelin",
                                 body="A zeppelin crossed the storm. Crowds watched it.",
                                 source="Other Wire")])
    view = store.lexical()
    assert view.base is base.base and view.segments == 1  # the base was not rebuilt
    assert len(view) == store.counts()["chunks"]
    hits = view.search("zeppelin", 5)
    assert urls(store, hits) == ["new"] and urls(store, view.sentence_search("zeppelin", 5)) \
        == ["new"]
    # Lucene's BM25 with the base's N and mean length; "zeppelin" is in no base chunk
    segment, _ = view.parts[1]
    stats = view.base.stats[0]
    n, df = stats.n, 0
    pos = int(np.flatnonzero(segment.chunk_ids == hits[0][0])[0])
    tf = 2  # title and text
    norm = 1.2 * (0.25 + 0.75 * segment.chunk_lengths[pos] / stats.avgdl)
    assert hits[0][1] == pytest.approx(math.log(1 + (n - df + 0.5) / (df + 0.5)) * tf
                                       / (tf + norm), rel=1e-5)
    # the filtered searches (hints) see the segment too
    other = store.allowed_chunk_ids(Filters(sources=("Other Wire",)))
    assert urls(store, view.search("storm zeppelin", 5, other)) == ["new"]


def test_deleted_and_replaced_chunks_never_come_back(svc):
    store = svc.index
    svc.ingest_articles([
        Article(url="https://example.com/x", title="Ice", body="Glacier glacier melt. "
                "Glacier ice melt fast.", source="Example News"),
        Article(url="https://example.com/y", title="Walk", body="A glacier was seen.",
                source="Example News")])
    store.lexical()
    svc.delete_document(article(3).document_id)
    svc.delete_document(Article(url="https://example.com/x", title="", body="").document_id)
    assert store.lexical().segments == 0  # deletions only: masks
    changed = article(5)
    svc.ingest_articles([replace(changed, body="Harvest festival lanterns. " + changed.body)])
    view = store.lexical()  # a later write: the earlier deletions stay masked
    assert view.segments == 1
    assert view.base.chunk_ids.size > len(view) == store.counts()["chunks"]
    live = {r[0] for r in store._conn().execute("SELECT id FROM chunks")}
    for q in QUESTIONS + ["harvest festival lanterns", "glacier melt"]:
        for ranking in (view.search(q, 50), view.sentence_search(q, 50)):
            assert {i for i, _ in ranking} <= live, q
            assert not {"3", "x"} & set(urls(store, ranking)), q
    assert urls(store, view.search("lanterns", 5)) == ["5"]
    # the deleted article's better sentences do not crowd out the live one
    assert urls(store, view.sentence_search("glacier melt", 1)) == ["y"]


def test_deletion_masks_grown_a_write_at_a_time_equal_masks_made_at_once(tmp_path,
                                                                         hash_embedder):
    """A write's masks start from the previous write's, and only the articles that lost a
    chunk are looked at again; sentences lie in two chunks here (overlap), so a sentence
    stays while either of its chunks does."""
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=20, chunk_overlap=10)
    svc.ingest_articles([article(i) for i in range(12)])
    index = fresh(svc.index)
    assert (index._owner_count > 1).any()
    rng = np.random.default_rng(3)
    order = rng.permutation(index.chunk_ids)
    before = Dropped.nothing(index)
    assert before.sentences.all() and before.chunks.all()
    for n in (1, 2, 5, 9, 20, 33, len(order)):
        removed = order[:n]
        grown, whole = Dropped(index, removed, before), Dropped(index, removed)
        assert grown.count == whole.count == n
        assert np.array_equal(grown.chunks, whole.chunks)
        assert np.array_equal(grown.sentences, whole.sentences), n
        before = grown
    assert not before.sentences.any()
    # fewer deletions than before (not a later write's): made whole, not grown
    assert np.array_equal(Dropped(index, order[:3], before).sentences,
                          Dropped(index, order[:3]).sentences)


def test_segments_fold_and_a_new_base_equals_a_fresh_build(svc):
    store = svc.index
    store.lexical()
    for i in range(8, 11):  # three writes, three segments
        svc.ingest_articles([article(i, source="Other Wire")])
        store.lexical()
    view = store.lexical()
    assert view.segments == 3
    before = {q: (view.search(q, 10), view.sentence_search(q, 10)) for q in QUESTIONS}
    # more than max_segments: folded into one segment, with the same scores
    store._lexical.policy = Policy(small=0, fraction=100.0, max_segments=2)
    svc.ingest_articles([article(11)])
    store.lexical()
    store._lexical.wait(30)
    folded = store.lexical()
    assert folded.segments == 1 and folded.base is view.base
    for q in QUESTIONS:  # the same scores; article 11 may come in between
        for old, new in zip(before[q], (folded.search(q, 10), folded.sentence_search(q, 10)),
                            strict=True):
            kept = [hit for hit in new if urls(store, [hit]) != ["11"]]
            assert kept == old[:len(kept)], q
    # past the fraction: a new base, built in the back, ranks exactly as a fresh build
    store._lexical.policy = Policy(small=0, fraction=0.01, max_segments=2)
    svc.ingest_articles([article(12)])
    store.lexical()
    store._lexical.wait(30)
    merged = store.lexical()
    assert merged.segments == 0 and merged.base is not view.base
    exact = fresh(store)
    for q in QUESTIONS:
        assert merged.search(q, 10) == exact.search(q, 10), q
        assert merged.sentence_search(q, 10) == exact.sentence_search(q, 10), q


def test_queries_go_on_with_the_current_view_while_a_new_base_is_built(svc, monkeypatch):
    store = svc.index
    store.lexical()
    store._lexical.policy = Policy(small=0, fraction=0.01, max_segments=100)
    started, release = threading.Event(), threading.Event()
    build = segments.LexicalView.build

    def slow_build(db, generation):
        started.set()
        assert release.wait(30)
        return build(db, generation)

    monkeypatch.setattr(segments.LexicalView, "build", staticmethod(slow_build))
    svc.ingest_articles([article(20, source="Other Wire")])
    view = store.lexical()  # catches up, then starts the merge
    assert started.wait(30) and store._lexical.merging()
    svc.ingest_articles([article(21, source="Other Wire")])
    during = store.lexical()  # not blocked by the merge: another segment
    assert during.segments == 2 and during.base is view.base
    assert "21" in urls(store, during.search("report 21", 3))
    release.set()
    store._lexical.wait(30)
    after = store.lexical()  # the new base, caught up with what came during its build
    assert after.base is not view.base and after.segments == 1
    assert after.generation == store.generation
    assert "21" in urls(store, after.search("report 21", 3))
    store._lexical.wait(30)


def test_a_small_index_is_rebuilt_whole(tmp_path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=16, chunk_overlap=0)
    svc.ingest_articles([article(i) for i in range(4)])
    first = svc.index.lexical()
    svc.ingest_articles([article(9)])
    view = svc.index.lexical()
    assert view.segments == 0 and view.base is not first.base
    assert len(view) == svc.index.counts()["chunks"] <= Policy().small


def saved_store(tmp_path, hash_embedder, n: int = 8):
    """A store whose keyword base was saved (``small`` 0, so bases are saved)."""
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=16, chunk_overlap=0)
    svc.ingest_articles([article(i) for i in range(n)])
    svc.index._lexical.policy = Policy(small=0, fraction=100.0, max_segments=100)
    return svc


def reopen(svc, hash_embedder):
    other = open_service(svc.index.dir, hash_embedder, chunk_tokens=16, chunk_overlap=0)
    other.index._lexical.policy = svc.index._lexical.policy
    return other


def test_a_saved_base_is_loaded_and_caught_up_not_rebuilt(tmp_path, hash_embedder, monkeypatch):
    svc = saved_store(tmp_path, hash_embedder)
    built = svc.index.lexical()
    files = svc.index._lexical.files
    for _ in range(100):  # saved by a background thread
        if files.generations():
            break
        threading.Event().wait(0.05)
    assert files.generations() == [built.generation]
    svc.ingest_articles([Article(url="https://example.com/z", title="Zeppelin",
                                 body="A zeppelin crossed the storm.", source="Other Wire")])
    svc.delete_document(article(2).document_id)

    def no_build(db, generation):
        raise AssertionError("rebuilt instead of loaded")

    monkeypatch.setattr(segments.LexicalView, "build", staticmethod(no_build))
    other = reopen(svc, hash_embedder)  # as a restarted server
    view = other.index.lexical()
    assert view.base_generation == built.generation and view.segments == 1
    assert isinstance(view.base.chunk_ids.base, np.memmap)  # read from disk as needed
    assert len(view) == other.index.counts()["chunks"]
    for q in QUESTIONS:  # ranks as the index it was saved from, caught up the same way
        assert view.search(q, 10) == svc.index.lexical().search(q, 10), q
        assert view.sentence_search(q, 10) == svc.index.lexical().sentence_search(q, 10), q
    assert urls(other.index, view.search("zeppelin", 3)) == ["z"]
    assert "2" not in urls(other.index, view.search("report 2", 10))


def test_an_unreadable_or_foreign_saved_base_is_rebuilt(tmp_path, hash_embedder,
                                                        monkeypatch):
    svc = saved_store(tmp_path, hash_embedder)
    view = svc.index.lexical()
    files = svc.index._lexical.files
    files.save(view.base, view.generation)  # now, not in the back
    builds = []
    build = segments.LexicalView.build
    monkeypatch.setattr(segments.LexicalView, "build", staticmethod(
        lambda db, generation: builds.append(generation) or build(db, generation)))
    assert reopen(svc, hash_embedder).index.lexical().search("budget vote", 5) \
        == view.search("budget vote", 5) and builds == []  # loaded
    meta = files.path(view.generation) / "meta.json"
    foreign = {**json.loads(meta.read_text()), "signature": "another tokenizer"}
    for broken in (json.dumps(foreign), "not json"):
        meta.write_text(broken)
        fresh_view = reopen(svc, hash_embedder).index.lexical()
        assert builds.pop() == view.generation and fresh_view.segments == 0
        assert fresh_view.search("budget vote", 5) == view.search("budget vote", 5)


def test_rechunking_the_index_removes_saved_bases(tmp_path, hash_embedder):
    from rag.index.base import IndexParams
    from rag.index.embedded.store import Store

    svc = saved_store(tmp_path, hash_embedder)
    view = svc.index.lexical()
    svc.index._lexical.files.save(view.base, view.generation)
    assert list(tmp_path.glob("lexical-*"))
    meta = svc.index.meta()
    svc.index.close()
    with Store.rebuilding(tmp_path, IndexParams(meta["model"], int(meta["dim"]), 32, 8)):
        pass
    assert not list(tmp_path.glob("lexical-*"))
    assert Store.open(tmp_path).meta()["chunk_tokens"] == "32"
