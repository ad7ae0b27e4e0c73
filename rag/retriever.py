"""The read path: question -> ranked, diverse, cited passages.

Hybrid mode fuses (reciprocal rank fusion) a dense ranking (FAISS), a chunk BM25 ranking and
a sentence BM25 ranking (bm25s in memory, or SQLite FTS5) of the whole index with the same
rankings restricted to each publisher, and each date, that the question names; then it caps
how many chunks one article may place in the results, since a multi-hop question needs
evidence from several articles.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal, NamedTuple

import numpy as np

from rag.answer import best_sentence, terms
from rag.documents import Filters, Passage
from rag.embedding import Embedder
from rag.hints import around, clause_text, mentioned_dates, mentioned_sources, source_clause_spans
from rag.lru import LRU
from rag.store import SearchStore

Mode = Literal["hybrid", "dense", "keyword"]
MODES: tuple[str, ...] = ("hybrid", "dense", "keyword")
Ranking = list[tuple[int, float]]
Spans = tuple[tuple[int, int], ...]  # (start, end) pieces of a question
MIN_CLAUSE_TERMS = 4  # a clause with fewer content words is searched as the whole question


@dataclass(frozen=True)
class RetrievalParams:
    depth: int = 100  # candidates taken from each ranking before fusion
    rrf_k: int = 5  # 60 in Cormack et al. (2009); 5 measured best here (eval/README.md)
    keyword_weight: float = 1.0  # weight of the BM25 rankings in the fusion
    sentence_weight: float = 1.0  # weight of the sentence-level BM25 rankings
    hint_weight: float = 1.0  # weight of the rankings restricted to a named source/date
    clause_weight: float = 1.0  # weight of a named source's own clause (0 = off)
    clause_dense: bool = True  # search clauses densely too
    clause_pooled: bool = True  # a clause's vector from the question's model call (if offered)
    source_hints: bool = True
    date_hints: bool = True
    doc_decay: float = 0.65  # the n-th chunk of an article ranks by score x doc_decay ** n
    max_per_doc: int = 0  # chunks one article may place before all others' (0 = no cap)
    keyword_backend: str = "bm25s"  # in-memory bm25s, or "fts5" (SQLite, in the store)


class Search(NamedTuple):
    """One ranking to fuse: a query text (the question or a clause of it) within filters."""
    text: str
    filters: Filters
    weight: float
    spans: Spans = ()  # a clause: where its pieces lie in the question


def rrf(rankings: list[tuple[Ranking, float]], k: int = 60) -> Ranking:
    """Weighted reciprocal rank fusion: sum of weight / (k + rank) over the rankings, best
    first (ties: lower item first). In numpy, with the same float64 sums in the same order as
    a loop over the rankings (``np.bincount`` adds in input order), so bit for bit those of
    the loop it replaced, at ~0.6x its time (~15 rankings of 100 a question)."""
    items, shares = [], []
    for ranking, weight in rankings:
        if ranking:
            items.append(np.fromiter((item for item, _ in ranking), np.int64, len(ranking)))
            shares.append(weight / (k + np.arange(1, len(ranking) + 1, dtype=np.float64)))
    if not items:
        return []
    ids, where = np.unique(np.concatenate(items), return_inverse=True)
    sums = np.bincount(where, weights=np.concatenate(shares), minlength=len(ids))
    order = np.lexsort((ids, -sums))
    return list(zip(ids[order].tolist(), sums[order].tolist(), strict=True))


def diversify(ranked: Ranking, group: dict[int, str], decay: float = 1.0,
              cap: int = 0) -> Ranking:
    """Spread the results over articles: an article's n-th chunk (n = 0 for its best) ranks by
    its score times ``decay ** n`` (a score <= 0 is divided instead, so it moves down too), and
    past ``cap`` chunks per article (0 = no cap) the rest go to the end, in order. Scores are
    kept as they were; ``decay`` 1 and ``cap`` 0 keep the ranking."""
    seen: dict[str, int] = {}
    keys: list[tuple[bool, float, int]] = []
    for pos, (item, score) in enumerate(ranked):
        g = group.get(item, "")
        n = seen.get(g, 0)
        seen[g] = n + 1
        keys.append((cap > 0 and n >= cap, -_discounted(score, decay ** n), pos))
    keys.sort()
    return [ranked[pos] for _, _, pos in keys]


def _discounted(score: float, factor: float) -> float:
    if factor == 0:  # decay 0: after every article's best chunk, in their order
        return -math.inf
    return score * factor if score > 0 else score / factor  # either way, lower


class Retriever:
    def __init__(self, store: SearchStore, embedder: Embedder,
                 params: RetrievalParams | None = None, cache_size: int = 512,
                 parallel: bool | None = None):
        self.store = store
        self.embedder = embedder
        self.params = params or RetrievalParams()
        # embeddings by text, or by (question, a clause's spans): a repeat skips the model
        self._cache: LRU[np.ndarray] = LRU(cache_size)
        # a model that runs one thread per call (a server's) embeds a question and its
        # clauses side by side (ONNX; torch serialises its calls), while this thread ranks by
        # keywords; with more threads per call, parallel calls would only fight over the cores
        cores = len(os.sched_getaffinity(0))
        if parallel is None:
            parallel = getattr(embedder, "threads", 0) == 1 and cores > 1
        self._pool = ThreadPoolExecutor(cores, thread_name_prefix="embed") if parallel else None
        self._local = threading.local()  # this thread's last question's nearest chunk

    def embed_query(self, question: str) -> np.ndarray:
        vec = self._cache.get(question)
        return self._embed(question) if vec is None else vec

    def _embed(self, text: str) -> np.ndarray:
        """One text per model call: with int8 activations scaled per batch, a vector must
        not depend on which other texts came with it."""
        vec = self.embedder.encode([text])[0]
        self._cache.put(text, vec)
        return vec

    def _pooling(self, search: Search) -> bool:
        return bool(search.spans) and self.params.clause_pooled and hasattr(
            self.embedder, "encode_parts")

    def _embed_parts(self, question: str, parts: list[Spans], wide: bool = False) -> None:
        """The question's vector and its clauses' (pooled from its token states): one call."""
        vecs = self.embedder.encode_parts(question, parts, wide=wide)  # type: ignore[attr-defined]
        self._cache.put(question, vecs[0])
        for spans, vec in zip(parts, vecs[1:], strict=True):
            self._cache.put((question, spans), vec)

    def vector(self, question: str, search: Search) -> np.ndarray:
        """The vector a search's dense ranking uses (from the cache, or embedded now)."""
        if not self._pooling(search):
            return self.embed_query(search.text)
        vec = self._cache.get((question, search.spans))
        if vec is None:
            self._embed_parts(question, [search.spans])
            vec = self._cache.get((question, search.spans))
        assert vec is not None
        return vec

    def start_embedding(self, question: str, searches: list[Search],
                        alone: bool = False) -> list[Future]:
        """Embed what the searches' dense rankings need and the cache lacks: on the pool
        (returns the futures), or now. A clause's vector is pooled from the question's own
        model call when the embedder offers it (one call a question instead of up to four:
        eval/README.md has its measured cost). ``alone`` (the machine is this question's):
        that one call runs now on every core, the keyword rankings after it."""
        parts = list(dict.fromkeys(s.spans for s in searches if self._pooling(s)))
        parts = [spans for spans in parts if self._cache.get((question, spans)) is None]
        texts = [s.text for s in searches if not self._pooling(s)]
        wide = alone and self.params.clause_pooled and hasattr(self.embedder, "encode_parts")
        # the question's own vector is row 0 of that call (clauses or not, when wide)
        whole = bool(parts) or (wide and question in texts and self._cache.get(question) is None)
        jobs = [partial(self._embed_parts, question, parts, wide)] if whole else []
        jobs += [partial(self._embed, t) for t in dict.fromkeys(texts)
                 if not (whole and t == question) and self._cache.get(t) is None]
        if self._pool is None or len(jobs) == 0 or wide:
            for job in jobs:
                job()
            return []
        return [self._pool.submit(job) for job in jobs]

    def dense(self, question: str, k: int, filters: Filters) -> Ranking:
        return self.store.dense_search(self.embed_query(question), k, filters)

    def similarity(self, question: str, filters: Filters | None = None) -> float:
        """Cosine similarity of the question and its nearest chunk (within ``filters``): what
        this thread's last ``rank`` of the question found, if it searched densely (once),
        else a search of its own."""
        filters = filters or Filters()
        nearest, self._local.nearest = getattr(self._local, "nearest", None), None
        if nearest is not None and nearest[:2] == (question, filters):
            return nearest[2]
        best = self.dense(question, 1, filters)
        return best[0][1] if best else 0.0

    def _found(self, question: str, filters: Filters, ranking: Ranking) -> Ranking:
        """Keep the top score of the question's own dense ranking for ``similarity`` (the
        exact and IVF searches give the same best hit for k=1 as for k=100)."""
        self._local.nearest = (question, filters, ranking[0][1] if ranking else 0.0)
        return ranking

    def keyword(self, question: str, k: int, filters: Filters) -> Ranking:
        return self.store.keyword_ranking(question, k, filters, self.params.keyword_backend)

    def sentences(self, question: str, k: int, filters: Filters) -> Ranking:
        return self.store.sentence_ranking(question, k, filters, self.params.keyword_backend)

    def plan(self, question: str, filters: Filters) -> list[Search]:
        """The searches whose rankings are fused: the question over everything, then
        restricted to each source and date it names; a source is also searched with its own
        clause of the question when that clause says enough."""
        p = self.params
        plans = [Search(question, filters, 1.0)]
        if p.source_hints and not filters.sources:
            named = mentioned_sources(question, self.store.sources())
            spans = source_clause_spans(question, named) if p.clause_weight else {}
            for source in named:
                f = replace(filters, sources=(source,))
                plans.append(Search(question, f, p.hint_weight))
                clause = clause_text(question, spans.get(source, []))
                if len(terms(clause)) >= MIN_CLAUSE_TERMS and clause != question:
                    plans.append(Search(clause, f, p.hint_weight * p.clause_weight,
                                        tuple(spans[source])))
        if p.date_hints:
            for day in mentioned_dates(question):
                lo, hi = around(day)
                lo = max(lo, filters.published_after or lo)
                hi = min(hi, filters.published_before or hi)
                if lo <= hi:
                    plans.append(Search(question, replace(filters, published_after=lo,
                                                          published_before=hi), p.hint_weight))
        return plans

    def rank(self, question: str, mode: Mode = "hybrid", filters: Filters | None = None,
             alone: bool = False) -> Ranking:
        """The full ranking (up to ``depth``), before it is cut to k. ``alone``: the machine
        has no other work (``start_embedding``)."""
        filters = filters or Filters()
        p = self.params
        if mode == "dense":
            ranked = self._found(question, filters, self.dense(question, p.depth, filters))
        elif mode == "keyword":
            ranked = self.keyword(question, p.depth, filters)
        else:
            plans = self.plan(question, filters)
            dense = [s for s in plans if p.clause_dense or not s.spans]
            embedding = self.start_embedding(question, dense, alone)
            lexical = [(self.keyword(s.text, p.depth, s.filters) if p.keyword_weight else [],
                        self.sentences(s.text, p.depth, s.filters) if p.sentence_weight else [])
                       for s in plans]  # meanwhile
            for pending in embedding:
                pending.result()
            rankings: list[tuple[Ranking, float]] = []
            for n, (s, (words, sentences)) in enumerate(zip(plans, lexical, strict=True)):
                if p.clause_dense or not s.spans:
                    found = self.store.dense_search(self.vector(question, s), p.depth, s.filters)
                    rankings.append((self._found(question, filters, found) if n == 0 else found,
                                     s.weight))
                if p.keyword_weight:
                    rankings.append((words, s.weight * p.keyword_weight))
                if p.sentence_weight:
                    rankings.append((sentences, s.weight * p.sentence_weight))
            ranked = rrf(rankings, p.rrf_k)[: p.depth]
        if p.max_per_doc or p.doc_decay != 1:
            ranked = diversify(ranked, self.store.chunk_documents([i for i, _ in ranked]),
                               p.doc_decay, p.max_per_doc)
        return ranked

    def search(self, question: str, k: int = 5, mode: Mode = "hybrid",
               filters: Filters | None = None, alone: bool = False) -> list[Passage]:
        return self._passages(question, self.rank(question, mode, filters, alone)[:k])

    def _passages(self, question: str, ranked: Ranking) -> list[Passage]:
        rows = self.store.chunk_rows([i for i, _ in ranked])
        passages: list[Passage] = []
        for chunk_id, score in ranked:
            row = rows.get(chunk_id)
            if row is None:  # deleted since the vectors were read
                continue
            passages.append(Passage(
                rank=len(passages) + 1, score=round(score, 6), text=row["text"],
                document_id=row["document_id"], chunk_id=f"{row['document_id']}:{row['ordinal']}",
                title=row["title"], url=row["url"], author=row["author"],
                published_date=row["published_date"], source=row["source"],
                char_start=row["char_start"], char_end=row["char_end"],
                highlight=best_sentence(question, row["text"], row["char_start"],
                                         row.get("sentences"))))
        return passages
