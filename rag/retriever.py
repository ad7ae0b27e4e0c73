"""The read path: question -> ranked, cited passages."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Literal

import numpy as np

from rag.answer import best_sentence
from rag.documents import Filters, Passage
from rag.embedding import Embedder
from rag.store import Store

Mode = Literal["hybrid", "dense", "keyword"]
MODES: tuple[str, ...] = ("hybrid", "dense", "keyword")


RRF_K = 60  # the constant of Cormack et al. (2009)
RRF_DEPTH = 50  # candidates taken from each ranking before fusion


def rrf(rankings: list[list[tuple[int, float]]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the rankings an id appears in."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (item, _) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


class QueryCache:
    """A small LRU of question embeddings: repeated questions skip the model."""

    def __init__(self, size: int = 512):
        self._size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            vec = self._items.get(key)
            if vec is not None:
                self._items.move_to_end(key)
            return vec

    def put(self, key: str, vec: np.ndarray) -> None:
        with self._lock:
            self._items[key] = vec
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, cache_size: int = 512):
        self.store = store
        self.embedder = embedder
        self._cache = QueryCache(cache_size)

    def embed_query(self, question: str) -> np.ndarray:
        vec = self._cache.get(question)
        if vec is None:
            vec = self.embedder.encode([question])[0]
            self._cache.put(question, vec)
        return vec

    def dense(self, question: str, k: int, filters: Filters) -> list[tuple[int, float]]:
        index, _ = self.store.vectors()
        allowed = self.store.allowed_chunk_ids(filters)
        scores, ids = index.search(self.embed_query(question), k, allowed)
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]

    def keyword(self, question: str, k: int, filters: Filters) -> list[tuple[int, float]]:
        return self.store.keyword_search(question, k, filters)

    def search(self, question: str, k: int = 5, mode: Mode = "hybrid",
               filters: Filters | None = None) -> list[Passage]:
        filters = filters or Filters()
        if mode == "dense":
            ranked = self.dense(question, k, filters)
        elif mode == "keyword":
            ranked = self.keyword(question, k, filters)
        else:
            depth = max(RRF_DEPTH, 2 * k)
            ranked = rrf([self.dense(question, depth, filters),
                          self.keyword(question, depth, filters)])[:k]
        return self._passages(question, ranked)

    def _passages(self, question: str, ranked: list[tuple[int, float]]) -> list[Passage]:
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
                highlight=best_sentence(question, row["text"], row["char_start"])))
        return passages
