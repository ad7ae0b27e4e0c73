"""The whole MultiHop-RAG dev corpus, ingested with the real model (the slowest test here)."""

from __future__ import annotations

import pytest

from rag import evaluate as ev
from rag.documents import Filters

from conftest import DEV, open_service


@pytest.fixture(scope="module")
def dev_service(tmp_path_factory, real_embedder):
    svc = open_service(tmp_path_factory.mktemp("dev-index"), real_embedder)
    report = svc.ingest_paths([DEV / "corpus.json"])
    assert len(report.added) == 375 and not report.rejected
    return svc


def test_dev_corpus_is_indexed_whole(dev_service):
    counts = dev_service.store.counts()
    assert counts["documents"] == 375 and counts["chunks"] > 3000
    index, _ = dev_service.store.vectors()
    assert len(index) == counts["chunks"]


def test_a_known_question_finds_its_evidence_articles(dev_service):
    question = ev.load_gold(DEV / "queries.json")[0]  # the FTX / Sam Bankman-Fried question
    result = dev_service.ask(question.question, k=5)
    urls = {p.url for p in result.passages}
    assert set(question.urls) & urls
    assert any(p.source in ("The Verge", "TechCrunch") for p in result.passages)


def test_filters_on_the_dev_corpus(dev_service):
    from datetime import date

    from rag.documents import Filters

    q = "Sam Bankman-Fried trial"
    only = dev_service.query(q, k=10, filters=Filters(sources=("The Verge",)))
    assert only and all(p.source == "The Verge" for p in only)
    dated = dev_service.query(q, k=10, filters=Filters(published_after=date(2023, 11, 1)))
    assert all(p.published_date >= "2023-11-01" for p in dated)


def test_parallel_query_embedding_changes_no_ranking(dev_service):
    """A server's model (one thread per call) embeds a question and its publishers' clauses
    side by side while the keyword rankings run: the rankings are those of doing it in
    turn."""
    from rag.config import Settings
    from rag.embedding import make_embedder
    from rag.evaluate import load_gold
    from rag.retriever import Retriever

    one_thread = make_embedder(Settings().model, threads=1)  # the default runtime
    assert one_thread.name == dev_service.embedder.name
    params = dev_service.retriever.params
    side_by_side = Retriever(dev_service.store, one_thread, params, parallel=True)
    in_turn = Retriever(dev_service.store, one_thread, params, parallel=False)
    questions = [g.question for g in load_gold(DEV / "queries.json")[:60]]
    clauses = 0
    for q in questions:
        clauses += len(side_by_side.plan(q, Filters())) > 1
        assert side_by_side.rank(q) == in_turn.rank(q), q
    assert clauses >= 20  # most of them name publishers, so several texts were embedded


def test_the_answer_threshold_reads_the_same_nearest_chunk_as_a_search_of_its_own(dev_service):
    """similarity() takes the best cosine of the question's own dense ranking from the rank
    that just ran in this thread (no second search), once; it equals a k=1 search's."""
    from rag.evaluate import load_gold

    r = dev_service.retriever
    for g in load_gold(DEV / "queries.json")[100:130]:
        for filters in (Filters(), Filters(sources=("The Verge",))):
            own = r.dense(g.question, 1, filters)
            expected = own[0][1] if own else 0.0
            r.rank(g.question, filters=filters)
            assert r._local.nearest[:2] == (g.question, filters)
            assert r.similarity(g.question, filters) == expected
            assert r._local.nearest is None  # used once
            assert r.similarity(g.question, filters) == expected  # then searched again
    r.rank("Which volcano erupted?", mode="keyword")
    assert r._local.nearest is None  # no dense ranking to reuse


def test_passage_sentences_come_from_the_store_as_ingest_split_the_article(dev_service):
    """chunk_rows gives each chunk the article's sentence spans inside it (clipped, relative
    to the chunk), so highlights need no splitting; they agree with splitting the passage
    alone for all but a few chunks (measured: 4,580 of 4,583)."""
    from rag.answer import best_sentence
    from rag.chunking import sentence_spans

    store = dev_service.store
    rows = store.chunk_rows(range(1, 3 * store.counts()["chunks"]))
    assert len(rows) == store.counts()["chunks"]
    bodies: dict[str, list[tuple[int, int]]] = {}
    alike = 0
    for row in rows.values():
        doc = row["document_id"]
        if doc not in bodies:
            bodies[doc] = sentence_spans(store.document(doc)["body"])
        start, end = row["char_start"], row["char_end"]
        assert row["sentences"] == [(max(s, start) - start, min(e, end) - start)
                                    for s, e in bodies[doc] if e > start and s < end]
        alike += row["sentences"] == sentence_spans(row["text"])
    assert alike >= 0.995 * len(rows)
    question = "What did the Federal Reserve decide about interest rates?"
    same = sum(best_sentence(question, r["text"], 0, r["sentences"])
               == best_sentence(question + " ", r["text"], 0) for r in rows.values())
    assert same >= 0.995 * len(rows)
