"""Fusion and diversity (pure functions), against plain loops and hand-checked cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.retrieval.fusion import diversify, rrf, zsum


def _rrf_loop(rankings, k):
    """The plain loop: the reference rrf's numpy form must equal."""
    fused: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, (item, _) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def test_rrf_by_hand():
    a = [(1, 9.0), (2, 8.0), (3, 7.0)]
    b = [(3, 0.9), (1, 0.5)]
    fused = dict(rrf([(a, 1.0), (b, 1.0)], k=10))
    assert fused[1] == 1 / 11 + 1 / 12
    assert fused[3] == 1 / 13 + 1 / 11
    assert fused[2] == 1 / 12
    assert [i for i, _ in rrf([(a, 1.0), (b, 1.0)], k=10)] == [1, 3, 2]


def test_rrf_weights_and_ties_break_by_id():
    a, b = [(5, 1.0)], [(4, 1.0)]
    assert [i for i, _ in rrf([(a, 1.0), (b, 1.0)])] == [4, 5]
    assert [i for i, _ in rrf([(a, 2.0), (b, 1.0)])] == [5, 4]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.integers(0, 40), st.just(0.0)), max_size=30),
                          st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 3.0])), max_size=16),
       st.integers(1, 100))
def test_rrf_equals_the_loop_bit_for_bit(rankings, k):
    """Same sums in the same order: equal floats, the same order of ties (many here: few
    items, repeated weights), also for an item twice in one ranking or a weight of 0."""
    assert rrf(rankings, k) == _rrf_loop(rankings, k)


def test_zsum_by_hand():
    a = [(1, 9.0), (2, 8.0), (3, 6.0)]  # mean 23/3, standard deviation sqrt(14)/3
    b = [(3, 0.9), (1, 0.5)]  # mean 0.7, standard deviation 0.2
    fused = dict(zsum([(a, 1.0), (b, 2.0)]))
    spread = 14 ** 0.5 / 3
    assert fused[1] == pytest.approx(3 / spread + 0)  # the last of b adds 0
    assert fused[2] == pytest.approx(2 / spread)  # b lacks it: 0
    assert fused[3] == pytest.approx(0 + 2 * 0.4 / 0.2)
    assert [i for i, _ in zsum([(a, 1.0), (b, 2.0)])] == [3, 1, 2]


def test_zsum_keeps_the_margin_rrf_drops():
    """Item 1 stands far ahead in one ranking, item 2 barely ahead of it in two: by rank
    item 2 wins, by standardised score item 1 does."""
    strong = [(1, 10.0), (2, 1.1), (3, 1.0), (4, 0.9)]
    close = [(2, 5.0), (1, 4.9), (3, 1.0), (4, 0.5)]
    rankings = [(strong, 1.0), (close, 1.0), (close, 1.0)]
    assert rrf(rankings)[0][0] == 2
    assert zsum(rankings)[0][0] == 1


def test_zsum_of_lists_without_spread_adds_nothing_and_ties_break_by_id():
    assert zsum([]) == [] and zsum([([], 1.0)]) == []
    assert zsum([([(7, 3.0)], 1.0), ([(5, 2.0), (6, 2.0)], 1.0)]) == [(5, 0.0), (6, 0.0),
                                                                      (7, 0.0)]
    assert [i for i, _ in zsum([([(9, 2.0), (4, 1.0)], 1.0), ([(4, 3.0), (9, 1.0)], 1.0)])
            ] == [4, 9]


def test_a_hard_cap_moves_extras_to_the_end():
    ranked = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6), (5, 0.5)]
    group = {1: "a", 2: "a", 3: "a", 4: "b", 5: "a"}
    assert [i for i, _ in diversify(ranked, group, cap=2)] == [1, 2, 4, 3, 5]
    assert diversify(ranked, group) == ranked
    assert [i for i, _ in diversify(ranked, group, decay=0.0)] == [1, 4, 2, 3, 5]


def test_each_further_chunk_of_an_article_is_discounted():
    ranked = [(1, 1.0), (2, 0.9), (3, 0.8), (4, 0.6), (5, 0.5), (6, 0.45)]
    group = {1: "a", 2: "a", 3: "a", 4: "b", 5: "c", 6: "b"}
    # a: 1.0, 0.9 x 0.5 = 0.45, 0.8 x 0.25 = 0.2; b: 0.6, 0.45 x 0.5 = 0.225; c: 0.5
    assert [i for i, _ in diversify(ranked, group, decay=0.5)] == [1, 4, 5, 2, 6, 3]
    assert diversify(ranked, group, decay=0.5)[1] == (4, 0.6)  # scores are kept
    # a tie keeps the earlier item first; the cap still applies after the discount
    assert [i for i, _ in diversify(ranked, group, decay=0.5, cap=1)] == [1, 4, 5, 2, 6, 3]
    assert [i for i, _ in diversify(ranked, group, decay=0.9, cap=2)] == [1, 2, 4, 5, 6, 3]


def test_discounted_scores_at_or_below_zero_still_move_down():
    ranked = [(1, 0.2), (2, -0.1), (3, -0.2)]
    group = {1: "a", 2: "a", 3: "b"}
    # item 2 is a's second chunk: -0.1 / 0.25 = -0.4 falls below b's -0.2
    assert [i for i, _ in diversify(ranked, group, decay=0.25)] == [1, 3, 2]
    # decay 0: every article's best chunk first, however low its score
    assert [i for i, _ in diversify([(1, 0.2), (2, 0.1), (3, -0.2)], group, decay=0.0)] \
        == [1, 3, 2]
