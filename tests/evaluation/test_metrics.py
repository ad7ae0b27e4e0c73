"""Metric functions on hand-computed cases: ties, duplicates, misses."""

from __future__ import annotations

import pytest

from rag.evaluation.metrics import (
    all_evidence,
    hit_at,
    paper_scores,
    percentile,
    squash,
    url_recall,
)

A, B, C = "Fact one is here.", "Second fact, two.", "Third\nfact three."


def test_squash_removes_spaces_and_newlines_only():
    assert squash(" a b\nc\t") == "abc\t"


def test_hit_ignores_spacing_differences():
    assert paper_scores(["xx Fact  one\nis here. yy"], [A]).hits10 == 1.0


def test_no_hit_anywhere():
    s = paper_scores(["nothing", "here"], [A, B])
    assert (s.hits4, s.hits10, s.mrr10, s.map10) == (0.0, 0.0, 0.0, 0.0)


def test_first_hit_at_rank_five():
    passages = ["x", "y", "z", "w", f"... {A} ...", "v"]
    s = paper_scores(passages, [A, B])
    assert (s.hits4, s.hits10, s.mrr10) == (0.0, 1.0, 0.2)
    assert s.map10 == pytest.approx((1 / 5) / 2)


def test_map_counts_each_fact_once_and_divides_by_all_facts():
    # rank 1 finds A and B; rank 2 repeats A (no new fact); rank 3 finds C
    passages = [f"{A} {B}", A, C]
    s = paper_scores(passages, [A, B, C])
    assert s.mrr10 == 1.0
    assert s.map10 == pytest.approx((2 / 1 + 0 / 2 + 1 / 3) / 3)


def test_duplicate_gold_facts_count_in_the_denominator():
    # upstream keeps duplicates: found once, but min(len(gold), 10) = 2
    s = paper_scores([A], [A, A])
    assert s.map10 == pytest.approx(0.5)


def test_tied_passages_are_scored_by_position():
    s = paper_scores(["x", A, A], [A])
    assert s.mrr10 == 0.5 and s.map10 == pytest.approx(0.5)


def test_only_the_top_ten_count():
    passages = ["x"] * 10 + [A]
    assert paper_scores(passages, [A]).hits10 == 0.0
    assert hit_at(passages, [A], 11) == 1.0


def test_url_metrics():
    urls = ["u1", "u1", "u2", "u3"]
    assert url_recall(urls, ["u1", "u4"], 4) == 0.5
    assert url_recall(urls, ["u1", "u2", "u2"], 2) == 0.5
    assert all_evidence(urls, ["u1", "u2"], 3) == 1.0
    assert all_evidence(urls, ["u1", "u2"], 2) == 0.0
    assert all_evidence(urls, [], 2) == 0.0 and url_recall(urls, [], 2) == 0.0


def test_percentile_nearest_rank():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 1) == 1.0
    assert percentile([], 50) == 0.0
