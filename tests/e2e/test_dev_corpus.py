"""The seed article and the whole MultiHop-RAG dev corpus, ingested with the real model (the
index eval/README.md measures on; the slowest test here)."""

from __future__ import annotations

import pytest

from rag.core.documents import Filters
from rag.evaluation import evaluate as ev

from conftest import DEV, SEEDS, open_service


@pytest.fixture(scope="module")
def dev_service(tmp_path_factory, real_embedder):
    svc = open_service(tmp_path_factory.mktemp("dev-index"), real_embedder)
    report = svc.ingest_paths([SEEDS, DEV / "corpus.json"])
    assert len(report.added) == 376 and not report.rejected
    return svc


def test_dev_corpus_is_indexed_whole(dev_service):
    counts = dev_service.index.counts()
    assert counts["documents"] == 376 and counts["chunks"] > 3000
    index, _ = dev_service.index.vectors()
    assert len(index) == counts["chunks"]


def test_a_known_question_finds_its_evidence_articles(dev_service):
    question = ev.load_gold(DEV / "queries.json")[0]  # the FTX / Sam Bankman-Fried question
    result = dev_service.ask(question.question, k=5)
    urls = {p.url for p in result.passages}
    assert set(question.urls) & urls
    assert any(p.source in ("The Verge", "TechCrunch") for p in result.passages)


def test_the_readme_question_ranks_its_answer_first_among_many_articles(dev_service):
    """The ATACMS range sentence is one chunk of 12 in its article, among 4,595 chunks of 376
    articles; hybrid search ranks it first (keyword and dense search alone do not)."""
    question = "What is the range of the ATACMS missiles?"
    top = dev_service.retriever.search(question, k=10)
    assert "a range of about 190 miles" in top[0].text, [p.chunk_id for p in top]
    assert "190 miles" in top[0].highlight.text
    answer = dev_service.ask(question, k=5).answer
    assert answer and "190 miles" in answer.sentences[0].text


def test_filters_on_the_dev_corpus(dev_service):
    from datetime import date

    from rag.core.documents import Filters

    q = "Sam Bankman-Fried trial"
    only = dev_service.retriever.search(q, k=10, filters=Filters(sources=("The Verge",)))
    assert only and all(p.source == "The Verge" for p in only)
    dated = dev_service.retriever.search(q, k=10,
                                         filters=Filters(published_after=date(2023, 11, 1)))
    assert all(p.published_date >= "2023-11-01" for p in dated)


def test_parallel_query_embedding_changes_no_ranking(dev_service):
    """A server's model (one thread per call) embeds a question and its publishers' clauses
    side by side while the keyword rankings run: the rankings are those of doing it in
    turn."""
    from rag.core.config import Settings
    from rag.embedding import make_embedder
    from rag.evaluation.evaluate import load_gold
    from rag.retrieval.retriever import Retriever

    one_thread = make_embedder(Settings().model, threads=1)  # the default runtime
    assert one_thread.name == dev_service.embedder.name
    params = dev_service.retriever.params
    side_by_side = Retriever(dev_service.index, one_thread, params, parallel=True)
    in_turn = Retriever(dev_service.index, one_thread, params, parallel=False)
    questions = [g.question for g in load_gold(DEV / "queries.json")[:60]]
    clauses = 0
    for q in questions:
        clauses += len(side_by_side.plan(q, Filters())) > 1
        assert side_by_side.rank(q) == in_turn.rank(q), q
    assert clauses >= 20  # most of them name publishers, so several texts were embedded


def test_the_ranking_reports_the_nearest_chunk_a_search_of_its_own_finds(dev_service):
    """rank() hands the answer step the best cosine of the question's own dense ranking (no
    second search); it equals a k=1 search's, within the request's filters."""
    from rag.evaluation.evaluate import load_gold

    r = dev_service.retriever
    for g in load_gold(DEV / "queries.json")[100:130]:
        for filters in (Filters(), Filters(sources=("The Verge",))):
            own = r.dense(g.question, 1, filters)
            expected = own[0][1] if own else 0.0
            assert r.rank(g.question, filters=filters).nearest == expected
            assert r.rank(g.question, mode="dense", filters=filters).nearest == expected
    assert r.rank("Which volcano erupted?", mode="keyword").nearest is None


def test_passage_sentences_come_from_the_store_as_ingest_split_the_article(dev_service):
    """chunk_rows gives each chunk the article's sentence spans inside it (clipped, relative
    to the chunk), so highlights need no splitting; they agree with splitting the passage
    alone for all but a few chunks (measured: 4,580 of 4,583)."""
    from rag.retrieval.answer import best_sentence
    from rag.text.sentences import sentence_spans

    store = dev_service.index
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


# The retrieval quality gate: a move that silently changes rankings must fail here. Floors
# sit a little under the figures measured on this index (seeds plus the dev corpus, the
# default runtime): a zero-weight dense ranking or a shuffled order falls well below them.
GATE = 300  # questions, every fifth of the dev split's 1,689 (nulls included)
# measured here: Hits@4 0.8352, Hits@10 0.9157, MRR@10 0.7087, abstention 0.8974; without
# the dense ranking 0.8123 / 0.9080 / 0.6940; shuffled MRR@10 0.2148
FLOORS = {"hits@4": 0.825, "hits@10": 0.91, "mrr@10": 0.695, "abstention": 0.87}


def gate_report(ask) -> dict:
    gold = ev.load_gold(DEV / "queries.json")[::5][:GATE]
    return ev.run(ask, gold)


def gate_figures(report: dict) -> dict:
    return {"hits@4": report["overall"]["hits@4"], "hits@10": report["overall"]["hits@10"],
            "mrr@10": report["overall"]["mrr@10"], "abstention": report["null"]["abstention"]}


def below(figures: dict) -> list[str]:
    return [name for name, floor in FLOORS.items() if figures[name] < floor]


def test_retrieval_quality_gate(dev_service, monkeypatch):
    figures = gate_figures(gate_report(lambda q, k: dev_service.ask(q, k=k)))
    assert not below(figures), figures
    # the gate has teeth: without the dense ranking, or in a shuffled order, it fails
    import random

    with monkeypatch.context() as patch:
        patch.setattr(dev_service.index, "dense_search", lambda *a, **kw: [])
        blind = gate_figures(gate_report(lambda q, k: dev_service.ask(q, k=k)))
    assert below(blind), blind
    rng = random.Random(7)

    def shuffled(q, k):
        result = dev_service.ask(q, k=k)
        rng.shuffle(result.passages)
        return result

    assert "mrr@10" in below(gate_figures(gate_report(shuffled)))


# One-article questions (eval/data/factoid-dev.jsonl): their rankings are fused by
# standardised score, and their dense rankings weigh less than the BM25 ones. Measured on
# this index: Hits@1 0.8200, MRR@10 0.8814; fused by rank instead 0.7800 / 0.8676.
FACTOID_FLOORS = {"hits@1": 0.80, "mrr@10": 0.87}


def test_one_article_questions_rank_their_passage_first(dev_service):
    from dataclasses import replace

    from rag.service import Service

    from conftest import ROOT

    gold = ev.load_gold(ROOT / "eval" / "data" / "factoid-dev.jsonl")

    def figures(svc) -> dict:
        o = ev.run(lambda q, k: svc.ask(q, k=k), gold)["overall"]
        return {name: o[name] for name in FACTOID_FLOORS}

    tuned = figures(dev_service)
    assert all(tuned[n] >= floor for n, floor in FACTOID_FLOORS.items()), tuned
    params = replace(dev_service.retriever.params, single_fusion="rrf")
    by_rank = figures(Service(dev_service.index, dev_service.embedder, dev_service.settings,
                              params))
    assert all(by_rank[n] < floor for n, floor in FACTOID_FLOORS.items()), by_rank
