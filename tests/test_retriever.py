"""Fusion and diversity (pure), and retrieval over a real index of seeds/."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.documents import Filters
from rag.retriever import diversify, rrf


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


def _rrf_loop(rankings, k):
    """The plain loop rrf was (until 2026-11-26): the reference its numpy form must equal."""
    fused: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, (item, _) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.integers(0, 40), st.just(0.0)), max_size=30),
                          st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 3.0])), max_size=16),
       st.integers(1, 100))
def test_rrf_equals_the_loop_bit_for_bit(rankings, k):
    """Same sums in the same order: equal floats, the same order of ties (many here: few
    items, repeated weights), also for an item twice in one ranking or a weight of 0."""
    assert rrf(rankings, k) == _rrf_loop(rankings, k)


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



def test_clauses_are_searched_without_the_model_when_asked(tmp_path, hash_embedder):
    """RAG_CLAUSE_DENSE=false: each named publisher's clause gets keyword rankings only, so
    the question is the one text the model embeds; by default a clause's vector comes from
    the question's own model call (RAG_CLAUSE_POOLED), or, turned off, from a call of its
    own (plumbing: a hash embedder will do)."""
    import json

    from rag.service import Service
    from rag.sources import article_from_record

    from conftest import DEV, open_service

    class Recording:
        def __init__(self, inner):
            self.inner, self.calls = inner, []

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode(self, texts):
            self.calls.extend([t] for t in texts)
            return self.inner.encode(texts)

        def encode_parts(self, text, parts, wide=False):
            self.calls.append([text, *parts])
            return self.inner.encode_parts(text, parts)

    records = json.loads((DEV / "corpus.json").read_text())
    two = [records[0], next(r for r in records if r["source"] != records[0]["source"])]
    built = open_service(tmp_path / "index", hash_embedder, chunk_tokens=60, chunk_overlap=10)
    built.ingest_articles([article_from_record(r, f"record {i}") for i, r in enumerate(two)])
    a, b = (r["source"] for r in two)
    q = (f"Does the {a} article about fediverse apps like Mastodon and the {b} report on "
         "stadiums agree on what users want from new social networks?")
    seen, found = {}, {}
    for dense, pooled in ((True, True), (True, False), (False, True)):
        emb = Recording(hash_embedder)
        svc = Service(built.store, emb, built.settings.model_copy(
            update={"clause_dense": dense, "clause_pooled": pooled}))
        found[dense, pooled] = svc.query(q, k=3)
        assert found[dense, pooled]
        seen[dense, pooled] = emb.calls
    assert seen[False, True] == [[q]]
    alone = seen[True, False]
    assert alone[0] == [q] and len(alone) == 3  # and each publisher's own clause, one by one
    cut = q.index(f"{b} report")
    assert seen[True, True] == [[q, ((cut, len(q)),), ((0, cut),)]]  # all in one call
    # the hash embedder pools a clause as its words embedded alone: the same vectors
    assert found[True, True] == found[True, False]


def test_a_question_alone_gets_the_wide_model_call_and_others_do_not(tmp_path, hash_embedder):
    """RAG_ALONE_WIDE: only a question alone in ask(), on a machine other processes leave
    idle, gets its model call on every core (even with no clause to pool); beside another
    question or request, on a busy machine, or turned off, the call is a narrow one (a hash
    embedder and a stated machine load; the ONNX side is tested equal bit for bit)."""
    from rag.service import Service

    from conftest import open_service
    from test_ingest import articles

    built = open_service(tmp_path / "index", hash_embedder, chunk_tokens=60, chunk_overlap=10)
    built.ingest_articles(articles(3))
    calls: list[bool] = []

    class Recording:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode(self, texts):
            calls.extend("narrow" for _ in texts)
            return self.inner.encode(texts)

        def encode_parts(self, text, parts, wide=False):
            calls.append("wide" if wide else "narrow")
            return self.inner.encode_parts(text, parts)

    class Load:
        def __init__(self, others):
            self.others = others

        def idle(self):
            return self.others < 0.25

    cases = ((True, 0, 0.0, 1), (True, 1, 0.0, 1), (True, 0, 0.9, 1), (True, 0, 0.0, 2),
             (False, 0, 0.0, 1))
    for n, (on, beside, others, requests) in enumerate(cases):
        svc = Service(built.store, Recording(hash_embedder),
                      built.settings.model_copy(update={"alone_wide": on}))
        svc.headroom = Load(others)
        svc.company = lambda requests=requests: requests  # requests the HTTP edge serves
        svc._asking += beside  # another question in ask() meanwhile
        assert svc.ask(f"Story {n} about topic {n}", k=2).passages
    assert calls == ["wide", "narrow", "narrow", "narrow", "narrow"]
