"""BM25 scoring as bm25s lays it out, built and summed with numpy (bit for bit bm25s's).

bm25s's own ``index`` takes a Python list of tokens per document and counts them in Python
(minutes and ~10 GB at a million chunks), and its numpy backend sums a query's scores with
``np.add.at`` (18 ms a question there); its numba backend would need numba. So the score
matrix is built here from compact token ids, and summed here, with the same float32 / float64
arithmetic in the same order as bm25s (tests/test_lexical.py compares them bit for bit);
bm25s's matrix layout, searching object and save/load are used as they are. A segment of a
changing index (rag/segments.py) is weighed with its base's statistics (``Stats``) instead.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

K1 = 1.2  # as SQLite FTS5 and Lucene
B = 0.75


class Postings:
    """A corpus's tokens as compact ids (4 bytes a token, not a Python list each), from which
    BM25 indexes are built with numpy: tens of millions of tokens at a million chunks."""

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self._ids = array("i")
        self._lengths = array("q")

    def add(self, tokens: list[str]) -> None:
        vocab = self.vocab
        self._ids.extend([vocab.setdefault(t, len(vocab)) for t in tokens])
        self._lengths.append(len(tokens))

    def __len__(self) -> int:
        return len(self._lengths)

    @property
    def lengths(self) -> np.ndarray:
        return np.frombuffer(self._lengths, dtype=np.int64) if self._lengths else \
            np.zeros(0, dtype=np.int64)

    def pairs(self, block: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (document, term) that occurs, by document then term id, with its count;
        counted in blocks of whole documents of ~``block`` tokens."""
        lengths, width = self.lengths, max(len(self.vocab), 1)
        ids = np.frombuffer(self._ids, dtype=np.int32) if self._ids else np.zeros(0, np.int32)
        ends = np.cumsum(lengths)
        docs, terms, counts = [], [], []
        first = 0
        while first < len(lengths):
            start = int(ends[first - 1]) if first else 0
            last = min(len(lengths), max(first + 1, int(np.searchsorted(ends, start + block,
                                                                        side="right"))))
            doc = np.repeat(np.arange(first, last, dtype=np.int64), lengths[first:last])
            key, tf = np.unique(doc * width + ids[start:int(ends[last - 1])], return_counts=True)
            docs.append((key // width).astype(np.int32))
            terms.append((key % width).astype(np.int32))
            counts.append(tf.astype(np.float32))
            first = last
        if not docs:
            return (np.zeros(0, np.int32),) * 2 + (np.zeros(0, np.float32),)
        return np.concatenate(docs), np.concatenate(terms), np.concatenate(counts)

    def weights(self, idf: np.ndarray, avgdl: float,
                pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(document, term, BM25 weight) of every pair (``pairs``, if counted already),
        Lucene's form as bm25s computes it (float32 idf times a float64 term-frequency part,
        rounded to float32), so a base built here scores exactly as bm25s's ``index`` would."""
        doc, term, tf = pairs if pairs is not None else self.pairs()
        norm = K1 * ((1 - B) + B * self.lengths / avgdl)
        data = np.empty(len(doc), dtype=np.float32)
        step = 1 << 22  # in slices: float64 temporaries of every pair were gigabytes
        for a in range(0, len(doc), step):
            d, t, f = doc[a:a + step], term[a:a + step], tf[a:a + step]
            data[a:a + step] = idf[t] * (f / (norm[d] + f))
        return doc, term, data


def _idf(n: int, df: Iterable[int]) -> np.ndarray:
    """Lucene's idf per term, as bm25s: ln(1 + (N - df + 0.5) / (df + 0.5)), as float32."""
    return np.array([math.log(1 + (n - d + 0.5) / (d + 0.5)) for d in df], dtype=np.float32)


def build_index(postings: Postings, block: int = 1 << 22):
    """A bm25s index of ``postings`` (None if it has no term), its score matrix built here
    (bm25s's own ``index`` takes a Python list of tokens per document: minutes and gigabytes
    at a million chunks) and searched by bm25s."""
    import bm25s

    n, width = len(postings), len(postings.vocab)
    if n == 0 or width == 0:
        return None
    pairs = postings.pairs(block)
    df = np.bincount(pairs[1], minlength=width)
    doc, term, data = postings.weights(_idf(n, df.tolist()), float(postings.lengths.mean()),
                                       pairs)
    del pairs
    order = np.argsort(term, kind="stable")  # by term, documents in order within each
    del term
    doc = doc[order]
    data = data[order]
    del order
    index = bm25s.BM25(k1=K1, b=B)
    index.scores = {"data": data, "indices": doc,
                    "indptr": np.concatenate([[0], np.cumsum(df)]).astype(np.int64),
                    "num_docs": n}
    index.vocab_dict = dict(postings.vocab)
    index.nonoccurrence_array = None
    return index


@dataclass(frozen=True)
class Stats:
    """What BM25 weighs a term by in one index: its document count, mean document length
    and each term's document frequency (bm25s's vocabulary and postings)."""

    n: int
    avgdl: float
    vocab: dict[str, int]
    df: np.ndarray

    @classmethod
    def of(cls, index, avgdl: float) -> Stats:
        """``index``'s statistics (a bm25s index, or None) and its mean document length."""
        if index is None:
            return cls(0, 1.0, {}, np.zeros(0, dtype=np.int64))
        return cls(int(index.scores["num_docs"]), float(avgdl), index.vocab_dict,
                   np.diff(index.scores["indptr"]))

    def idf(self, tokens: list[str]) -> np.ndarray:
        """Lucene's idf, as bm25s computes it: ln(1 + (N - df + 0.5) / (df + 0.5))."""
        ids = np.array([self.vocab.get(t, -1) for t in tokens], dtype=np.int64)
        known = (ids >= 0) & (ids < len(self.df))
        df = np.where(known, self.df[np.where(known, ids, 0)] if len(self.df) else 0, 0)
        return np.log(1 + (self.n - df + 0.5) / (df + 0.5))


class Weighted:
    """BM25 scores of a few documents weighed with another index's ``Stats`` (so that they
    add up with that index's), with bm25s's ``get_scores``: a sparse documents x terms matrix."""

    def __init__(self, postings: Postings, stats: Stats):
        from scipy import sparse

        self.vocab = dict(postings.vocab)
        idf = stats.idf(list(self.vocab)).astype(np.float32)
        doc, term, data = postings.weights(idf, max(stats.avgdl, 1e-9))
        self.matrix = sparse.csc_matrix((data, (doc, term)),
                                        shape=(len(postings), len(self.vocab)))

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        ids = [self.vocab[t] for t in tokens if t in self.vocab]
        if not ids:
            return np.zeros(self.matrix.shape[0], dtype=np.float32)
        return np.asarray(self.matrix[:, ids].sum(axis=1), dtype=np.float32).ravel()


def accumulate(index, tokens: list[str]) -> np.ndarray:
    """bm25s's ``get_scores``, summed the same way (float32, term by term, so bit for bit
    equal) but with a fancy-index add per term instead of its numpy backend's ``np.add.at``
    (18 ms of a question at a million chunks; its numba backend would need numba)."""
    m = index.scores
    data, indices, indptr = m["data"], m["indices"], m["indptr"]
    scores = np.zeros(int(m["num_docs"]), dtype=np.float32)
    vocab = index.vocab_dict
    for token in tokens:
        t = vocab.get(token)
        if t is None or t >= len(indptr) - 1:
            continue
        a, b = int(indptr[t]), int(indptr[t + 1])
        scores[indices[a:b]] += data[a:b]  # a term's documents are distinct
    return scores
