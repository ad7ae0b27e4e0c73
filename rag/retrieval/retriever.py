"""The read path: question -> ranked, diverse, cited passages.

Hybrid mode fuses a dense ranking (FAISS or Milvus), a chunk BM25 ranking and a sentence
BM25 ranking of the whole index with the same rankings within each publisher, and each date,
that the question names (planner.py). A question that seems to need several articles has
them fused by rank (RRF) and its results spread over articles (fusion.py); one that seems to
need one has them fused by standardised score, so a passage that stands far out in one
ranking keeps its lead, and its dense rankings weigh less than the BM25 ones.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, NamedTuple

import numpy as np

from rag.core.documents import Filters, Passage
from rag.core.lru import LRU
from rag.embedding import Embedder
from rag.index.base import Index, Ranking
from rag.retrieval.answer import best_sentence
from rag.retrieval.fusion import diversify, rrf, zsum
from rag.retrieval.params import RetrievalParams
from rag.retrieval.planner import Mentions, Search, Spans, mentions, multi_article, plan

Mode = Literal["hybrid", "dense", "keyword"]


class Ranked(NamedTuple):
    """A question's full ranking (up to ``depth``), and the cosine similarity of the question
    and its nearest chunk within the request's filters when a dense search of the question
    itself ran (the answer step needs it; None: it did not run)."""

    ranking: Ranking
    nearest: float | None


class Retriever:
    def __init__(self, index: Index, embedder: Embedder,
                 params: RetrievalParams | None = None, cache_size: int = 512,
                 parallel: bool | None = None):
        self.index = index
        self.embedder = embedder
        self.params = params or RetrievalParams()
        # embeddings by text, or by (question, a clause's spans): a repeat skips the model
        self._cache: LRU[np.ndarray] = LRU(cache_size)
        # a model that runs one thread per call (a server's) embeds the question while this
        # thread ranks by keywords; with more threads per call they would fight over cores
        cores = len(os.sched_getaffinity(0))
        if parallel is None:
            parallel = getattr(embedder, "threads", 0) == 1 and cores > 1
        self._pool = ThreadPoolExecutor(cores, thread_name_prefix="embed") if parallel else None

    def close(self) -> None:
        """Stop the embedding threads (a closed service's retriever is not used again)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def embed_query(self, question: str) -> np.ndarray:
        vec = self._cache.get(question)
        if vec is None:
            self._embed(question, [])
            vec = self._cache.get(question)
        assert vec is not None
        return vec

    def _embed(self, question: str, parts: list[Spans]) -> None:
        """The question's vector and its clauses' (pooled from its token states where the
        runtime can), from one model call. One question per call: with int8 activations
        scaled per batch, a vector must not depend on what it is embedded with."""
        vecs = self.embedder.encode_parts(question, parts)
        self._cache.put(question, vecs[0])
        for spans, vec in zip(parts, vecs[1:], strict=True):
            self._cache.put((question, spans), vec)

    def vector(self, question: str, search: Search) -> np.ndarray:
        """The vector a search's dense ranking uses (from the cache, or embedded now)."""
        if not search.spans:
            return self.embed_query(search.text)
        vec = self._cache.get((question, search.spans))
        if vec is None:
            self._embed(question, [search.spans])
            vec = self._cache.get((question, search.spans))
        assert vec is not None
        return vec

    def start_embedding(self, question: str, searches: list[Search]) -> Future | None:
        """Embed what the searches' dense rankings need and the cache lacks, in one model
        call: on the pool (the future is returned), or now."""
        parts = list(dict.fromkeys(s.spans for s in searches if s.spans))
        parts = [spans for spans in parts if self._cache.get((question, spans)) is None]
        if not parts and self._cache.get(question) is not None:
            return None
        if self._pool is None:
            self._embed(question, parts)
            return None
        return self._pool.submit(self._embed, question, parts)

    def dense(self, question: str, k: int, filters: Filters) -> Ranking:
        return self.index.dense_search(self.embed_query(question), k, filters)

    def similarity(self, question: str, filters: Filters | None = None) -> float:
        """Cosine similarity of the question and its nearest chunk within ``filters``."""
        best = self.dense(question, 1, filters or Filters())
        return best[0][1] if best else 0.0

    def plan(self, question: str, filters: Filters,
             named: Mentions | None = None) -> list[Search]:
        named = named or mentions(question, self.index.sources())
        return plan(question, filters, named, self.params)

    def rank(self, question: str, mode: Mode = "hybrid",
             filters: Filters | None = None) -> Ranked:
        """The full ranking (up to ``depth``), before it is cut to k."""
        filters = filters or Filters()
        p = self.params
        named = mentions(question, self.index.sources())
        multi = multi_article(question, named)
        nearest: float | None = None
        if mode == "dense":
            ranked = self.dense(question, p.depth, filters)
            nearest = ranked[0][1] if ranked else 0.0
        elif mode == "keyword":
            ranked = self.index.keyword_ranking(question, p.depth, filters)
        else:
            searches = self.plan(question, filters, named)
            pending = self.start_embedding(question, searches)
            lexical = [(self.index.keyword_ranking(s.text, p.depth, s.filters)
                        if p.keyword_weight else [],
                        self.index.sentence_ranking(s.text, p.depth, s.filters)
                        if p.sentence_weight else [])
                       for s in searches]  # meanwhile
            if pending is not None:
                pending.result()
            dense_weight = 1.0 if multi else p.single_dense_weight
            rankings: list[tuple[Ranking, float]] = []
            for n, (s, (words, sentences)) in enumerate(zip(searches, lexical, strict=True)):
                found = self.index.dense_search(self.vector(question, s), p.depth, s.filters)
                if n == 0:  # the question itself, within the request's filters
                    nearest = found[0][1] if found else 0.0
                rankings.append((found, s.weight * dense_weight))
                if p.keyword_weight:
                    rankings.append((words, s.weight * p.keyword_weight))
                if p.sentence_weight:
                    rankings.append((sentences, s.weight * p.sentence_weight))
            single = not multi and p.single_fusion == "zsum"
            ranked = (zsum(rankings) if single else rrf(rankings, p.rrf_k))[: p.depth]
        if multi and (p.max_per_doc or p.doc_decay != 1):
            ranked = diversify(ranked, self.index.chunk_documents([i for i, _ in ranked]),
                               p.doc_decay, p.max_per_doc)
        return Ranked(ranked, nearest)

    def search(self, question: str, k: int = 5, mode: Mode = "hybrid",
               filters: Filters | None = None) -> list[Passage]:
        return self.passages(question, self.rank(question, mode, filters).ranking[:k])

    def passages(self, question: str, ranked: Ranking) -> list[Passage]:
        """The chunks of ``ranked`` as cited passages, each with its best sentence."""
        rows = self.index.chunk_rows([i for i, _ in ranked])
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
