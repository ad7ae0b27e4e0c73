"""Document-level metrics (trec_eval / BEIR definitions) on hand-computed rankings."""

from __future__ import annotations

import math

import pytest

from rag.evaluation.ranking import documents, map_at, mrr_at, ndcg_at, recall_at


def test_passages_collapse_to_their_documents_best_rank():
    assert documents(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_graded_ndcg_uses_the_relevance_as_gain():
    qrels = {"a": 3, "b": 1, "c": 0}
    # ranked b, c, a: DCG = 1/log2(2) + 0 + 3/log2(4) = 2.5; ideal a, b: 3 + 1/log2(3)
    assert ndcg_at(["b", "c", "a"], qrels, 10) == pytest.approx(2.5 / (3 + 1 / math.log2(3)))
    assert ndcg_at(["a", "b"], qrels, 10) == pytest.approx(1.0)
    # the cut: at k=1 only b counts, and the ideal is a alone
    assert ndcg_at(["b", "c", "a"], qrels, 1) == pytest.approx(1 / 3)


def test_recall_map_mrr_and_the_cut_off():
    qrels = {"a": 1, "b": 1, "c": 1, "z": 0}
    ranked = ["z", "a", "x", "b"]
    assert recall_at(ranked, qrels, 10) == pytest.approx(2 / 3)
    assert recall_at(ranked, qrels, 2) == pytest.approx(1 / 3)
    # precision 1/2 at rank 2 and 2/4 at rank 4, over all 3 relevant (not min(k, R))
    assert map_at(ranked, qrels, 10) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert map_at(ranked, qrels, 3) == pytest.approx((1 / 2) / 3)
    assert mrr_at(ranked, qrels, 10) == 0.5 and mrr_at(ranked, qrels, 1) == 0.0


def test_nothing_relevant_scores_zero():
    for metric in (ndcg_at, recall_at, map_at, mrr_at):
        assert metric(["a"], {"a": 0}, 10) == 0.0
        assert metric([], {"a": 1}, 10) == 0.0
