"""In-memory BM25 (bm25s) against bm25s itself, plain loops and hand-checkable cases."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from rag.core.documents import Article, Filters
from rag.index.embedded.bm25.index import LexicalIndex
from rag.text.tokens import Tokenizer

from conftest import open_service


def article(n: int, body: str, source: str = "Example News", when: str = "2023-10-01"):
    return Article(url=f"https://example.com/{n}", title=f"Title {n}", body=body,
                   source=source, author=f"Writer {n}",
                   published_date=date.fromisoformat(when))


BODIES = [
    "The committee approved the budget. Rockets were launched at dawn from the coast.",
    "Bankman-Fried faced a long criminal trial. The jury deliberated for hours.",
    "Budget talks stalled again. The committee will meet on Friday to vote.",
    "Longer-range missiles reached the border. Officials said the range was 190 miles.",
]


@pytest.fixture
def svc(tmp_path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=16, chunk_overlap=0)
    svc.ingest_articles([article(i, b, source="Other Wire" if i == 3 else "Example News",
                                 when=f"2023-10-0{i + 1}") for i, b in enumerate(BODIES)])
    return svc


def docs_of(store, ranking):
    rows = store.chunk_rows([i for i, _ in ranking])
    return [rows[i]["url"].rsplit("/", 1)[1] for i, _ in ranking]


def test_tokens_are_stemmed_content_words_with_compounds_whole():
    tok = Tokenizer()
    assert tok("The rockets were launched by Bankman-Fried's team") == [
        "rocket", "launch", "bankman-fri", "team"]
    assert tok("") == [] and tok("the of and") == []


def test_bm25_ranks_and_scores_like_the_formula(svc):
    lex = svc.index.lexical().base
    assert len(lex) == svc.index.counts()["chunks"]
    ranked = lex.search("committee budget vote", 10)
    assert docs_of(svc.index, ranked)[0] == "2"  # all three words
    assert set(docs_of(svc.index, ranked)) == {"0", "2"}
    assert all(a[1] >= b[1] for a, b in zip(ranked, ranked[1:], strict=False))
    # a word found once in one chunk: Lucene's BM25 (no k1 + 1 factor, which only scales)
    # score = idf * tf / (tf + k1 (1 - b + b len/avg)), idf = ln(1 + (N - df + .5)/(df + .5))
    (cid, score), = lex.search("jury", 10)
    n, df = len(lex), 1
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    assert score == pytest.approx(idf * 1 / (1 + 1.2 * (0.25 + 0.75 * length(lex, cid))),
                                  rel=1e-4)
    assert lex.search("zzzqqq", 10) == [] and lex.search("the of", 10) == []


def length(lex: LexicalIndex, cid: int) -> float:
    """A chunk's length in tokens over the average (what BM25's b scales)."""
    pos = int(np.flatnonzero(lex.chunk_ids == cid)[0])
    return lex.chunk_lengths[pos] / lex.chunk_lengths.mean()


def test_filters_restrict_both_searches(svc):
    store = svc.index
    other = store.allowed_chunk_ids(Filters(sources=("Other Wire",)))
    lex = store.lexical()
    q = "range missiles budget"
    unfiltered = (lex.search(q, 10), lex.sentence_search(q, 10))
    assert len(set(docs_of(store, unfiltered[0]))) > 1
    assert set(docs_of(store, lex.search("range missiles budget", 10, other))) == {"3"}
    assert set(docs_of(store, lex.sentence_search("range missiles budget", 10, other))) == {"3"}
    assert lex.search("budget", 10, np.zeros(0, np.int64)) == []
    # a question's scores are kept for its filtered searches, never changed by them
    assert (lex.search(q, 10), lex.sentence_search(q, 10)) == unfiltered


def test_sentence_search_ranks_the_chunk_holding_the_best_sentence(svc):
    store = svc.index
    ranked = store.lexical().sentence_search("how far is the range in miles", 5)
    top = store.chunk_rows([ranked[0][0]])[ranked[0][0]]
    assert "190 miles" in top["text"]


def test_sentence_search_equals_the_plain_loop(tmp_path, hash_embedder):
    """The vectorised bookkeeping against the obvious loop: the best 2k sentences, best
    first; each chunk that holds one whole (and is allowed) takes the first score it sees."""
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=24, chunk_overlap=12)
    svc.ingest_articles([article(i, " ".join(BODIES[i:] + BODIES[:i]),
                                 source="Other Wire" if i == 3 else "Example News")
                         for i in range(len(BODIES))])
    store = svc.index
    lex = store.lexical().base
    owners = [lex._owner_pos[a:b].tolist()
              for a, b in zip(lex._owner_ptr[:-1], lex._owner_ptr[1:], strict=True)]
    assert sum(map(len, owners)) > len(owners)  # some sentences lie in two chunks (overlap)
    every = np.array(sorted(lex.chunk_ids.tolist()), dtype=np.int64)
    for allowed in (None, store.allowed_chunk_ids(Filters(sources=("Other Wire",))),
                    every[::2], np.zeros(0, np.int64)):
        for q in ("committee budget vote", "range missiles budget", "the jury trial", "zebra"):
            for k in (1, 2, 3, 10):
                scores = lex._scores(lex._sentences, q, k)
                expected: dict[int, float] = {}
                if scores is not None:
                    if allowed is not None:
                        docs = set(lex.chunk_doc[np.isin(lex.chunk_ids, allowed)].tolist())
                        scores = np.where(np.isin(lex.sent_doc, list(docs)), scores, 0.0)
                    best = sorted(np.flatnonzero(scores > 0).tolist(),
                                  key=lambda s: (-scores[s], s))[: 2 * k]
                    for s in best:  # the best 2k sentences, ties: the lower position
                        for pos in owners[s]:
                            cid = int(lex.chunk_ids[pos])
                            if allowed is None or cid in set(allowed.tolist()):
                                expected.setdefault(cid, float(scores[s]))
                want = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:k]
                assert lex.sentence_search(q, k, allowed) == want, (q, k, allowed)


def test_narrow_filters_rank_exactly_as_the_masks_do(tmp_path, hash_embedder, monkeypatch):
    """A filter admitting at most NARROW of an index keeps its chunks' and sentences'
    positions; its searches look at those alone, and a text not yet scored over every
    sentence is scored over the filter's sentences only (``accumulate_within``). Every path
    gives the rankings of the plain masks over every score, scores bit for bit, whatever the
    order in which a text's searches come (cold or warm score cache)."""
    import rag.index.embedded.bm25.index as lx

    svc = open_service(tmp_path, hash_embedder, chunk_tokens=24, chunk_overlap=12)
    svc.ingest_articles([article(i, " ".join(BODIES[i:] + BODIES[:i]),
                                 source=f"Wire {i % 3}") for i in range(9)])
    store = svc.index
    lex = store.lexical().base
    every = np.array(sorted(lex.chunk_ids.tolist()), dtype=np.int64)
    filters = [store.allowed_chunk_ids(Filters(sources=(f"Wire {i}",))) for i in range(3)]
    filters += [every[::2], every[:1], np.zeros(0, np.int64)]
    questions = ("committee budget vote", "range missiles budget", "the jury trial", "zebra")

    def rankings(narrow: float, warm: bool) -> list:
        monkeypatch.setattr(lx, "NARROW", narrow)
        lex._filter_cache.clear()
        lex._score_cache.clear()
        out = []
        for q in questions:
            if warm:
                lex.search(q, 5), lex.sentence_search(q, 5)
            for allowed in filters:
                out.append((lex.search(q, 5, allowed), lex.sentence_search(q, 5, allowed)))
            lex._score_cache.clear()
        return out

    masks = rankings(0.0, warm=True)  # no filter is narrow: masks over every score
    assert any(r[0] or r[1] for r in masks)
    assert rankings(1.0, warm=True) == masks  # every filter narrow, every text scored first
    assert rankings(1.0, warm=False) == masks  # every filter narrow, texts scored within
    assert rankings(1 / 3, warm=False) == masks  # some narrow, some not


def zipf_index(seed: int, docs: int, words: int, a: float, longest: int):
    """A bm25s index of ``docs`` random documents over ``words`` Zipf-distributed words."""
    from rag.index.embedded.bm25.scoring import Postings, build_index

    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(words)]
    postings = Postings()
    for _ in range(docs):
        postings.add([vocab[j] for j in rng.zipf(a, rng.integers(1, longest)) % words])
    return build_index(postings), vocab, rng


def test_scores_within_ranges_are_the_full_scores_bit_for_bit():
    from rag.index.embedded.bm25.scoring import accumulate, accumulate_within

    index, vocab, rng = zipf_index(11, 3000, 200, 1.3, 30)
    bounds = np.unique(rng.integers(0, 3001, 60))
    starts, ends = bounds[0:-1:2], bounds[1::2]  # disjoint ranges, some empty-handed
    inside = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
    for q in (["w1"], ["w0", "w2", "w0"], ["w199", "nothing"], vocab[:50]):
        full = accumulate(index, q)
        assert np.array_equal(accumulate_within(index, q, starts, ends), full[inside]), q
    assert len(accumulate_within(index, ["w1"], starts[:0], ends[:0])) == 0


def test_a_floor_of_the_kth_best_never_passes_it():
    """``bm25.floor``: a lower bound of the k-th best score among the admitted documents,
    from the rarest terms' documents; so the scores not below it hold the best k."""
    from rag.index.embedded.bm25.scoring import accumulate, floor

    index, vocab, rng = zipf_index(5, 2000, 150, 1.2, 25)
    found = 0
    for trial in range(200):
        q = [vocab[j] for j in rng.integers(0, 150, rng.integers(1, 8))]
        scores = accumulate(index, q)
        admitted = rng.random(2000) < rng.choice([1.0, 0.5, 0.05])
        for k in (1, 5, 40):
            for keep in (None, admitted.__getitem__):
                bound = floor(index, q, scores, k, keep)
                pool = scores[admitted] if keep else scores
                pool = np.sort(pool[pool > 0])[::-1]
                if bound is None:
                    continue
                found += 1
                assert len(pool) >= k and bound <= pool[k - 1], (trial, k)
    assert found > 300  # the bound was found often enough to test


def test_searches_return_the_best_k_with_ties_to_the_lower_position(tmp_path, hash_embedder,
                                                                     monkeypatch):
    """Unfiltered and wide-filter searches list only the scores not below a floor of the
    k-th best; their results are the plain sort's (score, then position), with deletions."""
    import rag.index.embedded.bm25.index as lx
    from rag.index.embedded.bm25.index import Dropped

    monkeypatch.setattr(lx, "NARROW", 0.0)  # no filter is narrow
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=24, chunk_overlap=12)
    svc.ingest_articles([article(i, " ".join(BODIES[i:] + BODIES[:i] + BODIES[i % 2:]),
                                 source=f"Wire {i % 3}") for i in range(12)])
    lex = svc.index.lexical().base
    every = np.array(sorted(lex.chunk_ids.tolist()), dtype=np.int64)
    wire = svc.index.allowed_chunk_ids(Filters(sources=("Wire 1",)))
    dropped = Dropped(lex, every[::5])
    used, tied_at_cut = [], 0
    real_floor = lx.floor
    monkeypatch.setattr(lx, "floor", lambda *a: used.append(real_floor(*a)) or used[-1])
    for q in ("committee budget vote", "range missiles budget jury", "the jury trial"):
        for allowed in (None, wire):
            for gone in (None, dropped):
                for k in range(1, 13):
                    lex._score_cache.clear()
                    scores = lex._scores(lex._chunks, q, k)
                    ok = np.ones(len(lex), dtype=bool)
                    if allowed is not None:
                        ok &= np.isin(lex.chunk_ids, allowed)
                    if gone is not None:
                        ok &= gone.chunks
                    ranked = sorted(np.flatnonzero((scores > 0) & ok).tolist(),
                                    key=lambda p: (-scores[p], p))
                    best = ranked[:k]
                    tied_at_cut += len(ranked) > k and scores[ranked[k - 1]] == scores[ranked[k]]
                    want = [(int(lex.chunk_ids[p]), float(scores[p])) for p in best]
                    assert lex.search(q, k, allowed, gone) == want, (q, k)
    assert any(b is not None for b in used)  # the floor did the work in some searches
    assert tied_at_cut  # and equal scores straddled the k-th place in some


def test_rebuilt_when_the_store_changes(svc):
    before = svc.index.lexical()
    assert svc.index.lexical() is before  # cached per generation
    svc.ingest_articles([article(9, "Volcanic ash grounded every flight.")])
    after = svc.index.lexical()
    assert after is not before and docs_of(svc.index, after.search("volcanic ash", 3)) == ["9"]


def test_numpy_built_index_scores_exactly_as_bm25s_own_index():
    """The base's score matrix is built here from compact token ids (bm25s's own ``index``
    needs a Python list per document); bm25s searches both, so their scores must be equal,
    bit for bit, including empty documents, repeated terms and blocks that split the corpus."""
    import bm25s

    from rag.index.embedded.bm25.scoring import Postings, accumulate, build_index

    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(300)]
    docs = [[vocab[j] for j in rng.zipf(1.3, rng.integers(0, 40)) % 300] for _ in range(500)]
    docs[3] = []
    own = bm25s.BM25(k1=1.2, b=0.75)
    own.index(docs, show_progress=False)
    for block in (1 << 22, 50):  # one block, and many
        postings = Postings()
        for doc in docs:
            postings.add(doc)
        ours = build_index(postings, block)
        with pytest.raises(RuntimeError):  # its tokens were dropped once counted
            postings.count()
        for q in (["w1"], ["w0", "w2", "w0"], ["w299", "nothing"], vocab[:40]):
            assert np.array_equal(ours.get_scores(q), own.get_scores(q)), (block, q)
            assert np.array_equal(accumulate(ours, q), own.get_scores(q)), (block, q)
    assert build_index(Postings()) is None


def test_terms_common_in_a_large_index_are_not_scored(svc, monkeypatch):
    """A query term in more than COMMON_SHARE of an index's chunks is left out of the scores
    (near-stopwords of the corpus); an index under COMMON_MIN_DOCS keeps every term."""
    import rag.index.embedded.bm25.scoring as bm

    lex = svc.index.lexical().base
    stats = lex.stats[0]
    committee = svc.index.lexical().base.tokenize("committee")[0]  # in 2 of the 4 articles
    assert not stats.common(committee)  # 4 articles: far under COMMON_MIN_DOCS
    with_common = lex.search("committee jury", 10)
    monkeypatch.setattr(bm, "COMMON_MIN_DOCS", 2)
    share = stats.df[stats.vocab[committee]] / stats.n
    monkeypatch.setattr(bm, "COMMON_SHARE", share - 1e-9)
    assert stats.common(committee) and not stats.common("juri")
    lex._score_cache.clear()
    assert lex.search("committee jury", 10) == lex.search("jury", 10) != with_common
    monkeypatch.setattr(bm, "COMMON_SHARE", share)  # in exactly that share: still scored
    lex._score_cache.clear()
    assert lex.search("committee jury", 10) == with_common
