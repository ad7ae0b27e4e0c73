"""Fusion and diversity (pure), and retrieval over a real index of seeds/."""

from __future__ import annotations

from rag.documents import Filters
from rag.retriever import cap_per_group, rrf


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


def test_cap_per_group_moves_extras_to_the_end():
    ranked = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6), (5, 0.5)]
    group = {1: "a", 2: "a", 3: "a", 4: "b", 5: "a"}
    assert [i for i, _ in cap_per_group(ranked, group, 2)] == [1, 2, 4, 3, 5]
    assert cap_per_group(ranked, group, 0) == ranked


def test_every_mode_over_the_seed_index(seed_index, real_embedder):
    from rag.config import Settings
    from rag.service import Service

    svc = Service.open(Settings(index_dir=seed_index), embedder=real_embedder)
    q = "What is the range of the ATACMS missiles?"
    for mode in ("hybrid", "dense", "keyword"):
        passages = svc.query(q, k=3, mode=mode)
        assert passages and all(p.url.startswith("https://www.washingtonpost.com/")
                                for p in passages)
        body = svc.store.document(passages[0].document_id)["body"]
        assert all(body[p.char_start:p.char_end] == p.text for p in passages)
    assert svc.query(q, k=3, filters=Filters(authors=("Nobody",))) == []
    assert svc.query("zzzqqq xxyyzz", k=3, mode="keyword") == []
