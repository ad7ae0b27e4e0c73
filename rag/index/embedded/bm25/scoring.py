"""BM25 scoring as bm25s lays it out, built and summed with numpy (bit for bit bm25s's).

bm25s's own ``index`` takes a Python list of tokens per document and counts them in Python
(minutes and ~10 GB at a million chunks), and its numpy backend sums a query's scores with
``np.add.at`` (18 ms a question there); its numba backend would need numba. So the score
matrix is built here from compact token ids, and summed here, with the same float32 / float64
arithmetic in the same order as bm25s (tests/test_lexical.py compares them bit for bit);
bm25s's matrix layout, searching object and save/load are used as they are. A segment of a
changing index (bm25/segments.py) is weighed with its base's statistics (``Stats``) instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

K1 = 1.2  # as SQLite FTS5 and Lucene
B = 0.75
# A query term found in more than this share of an index's documents is not scored (in an
# index of at least COMMON_MIN_DOCS): near-stopwords of the corpus ("said", "new", "year")
# whose postings were half of a dev question's work at a million chunks. On the dev split
# (eval/README.md) it changed every metric by under 0.002; a tenth instead cost 0.008 MRR.
COMMON_SHARE = 0.2
COMMON_MIN_DOCS = 1000


class Counted:
    """The distinct terms of a block of consecutive documents and their counts, by document
    then term id: ~6 bytes a (document, term), documents implied by ``per_doc``."""

    def __init__(self, first: int, per_doc: np.ndarray, terms: np.ndarray, tf: np.ndarray):
        self.first, self.per_doc, self.terms, self.tf = first, per_doc, terms, tf

    def docs(self) -> np.ndarray:
        return np.repeat(np.arange(self.first, self.first + len(self.per_doc), dtype=np.int32),
                         self.per_doc)


class Postings:
    """A corpus's tokens as compact ids (4 bytes a token, not a Python list each), from which
    BM25 indexes are built with numpy: hundreds of millions of tokens at a million chunks."""

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self._ids = array("i")
        self._lengths = array("q")
        self._dropped = False

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

    def count(self, block: int = 1 << 20) -> list[Counted]:
        """Every (document, term) that occurs, with its count, in blocks of whole documents
        of ~``block`` tokens."""
        if self._dropped:
            raise RuntimeError("these postings' tokens were dropped by build_index")
        lengths, width = self.lengths, max(len(self.vocab), 1)
        ids = np.frombuffer(self._ids, dtype=np.int32) if self._ids else np.zeros(0, np.int32)
        ends = np.cumsum(lengths)
        blocks, first = [], 0
        while first < len(lengths):
            start = int(ends[first - 1]) if first else 0
            last = min(len(lengths), max(first + 1, int(np.searchsorted(ends, start + block,
                                                                        side="right"))))
            doc = np.repeat(np.arange(first, last, dtype=np.int64), lengths[first:last])
            key, tf = np.unique(doc * width + ids[start:int(ends[last - 1])], return_counts=True)
            blocks.append(Counted(first, np.bincount(key // width - first, minlength=last - first
                                                     ).astype(np.int32),
                                  (key % width).astype(np.int32),
                                  tf.astype(np.uint16 if tf.max(initial=0) < 1 << 16
                                            else np.int32)))
            first = last
        return blocks

    def drop_tokens(self) -> None:
        """Free the token ids (once counted); lengths and vocabulary stay."""
        self._ids, self._dropped = array("i"), True

    def weights(self, idf: np.ndarray, avgdl: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(document, term, BM25 weight) of every pair (a segment's few documents)."""
        norm = _norm(self.lengths, avgdl)
        blocks = self.count()
        if not blocks:
            return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
        doc = np.concatenate([b.docs() for b in blocks])
        term = np.concatenate([b.terms for b in blocks])
        tf = np.concatenate([b.tf.astype(np.int32) for b in blocks])
        return doc, term, _weigh(idf, norm, doc, term, tf)


def _norm(lengths: np.ndarray, avgdl: float) -> np.ndarray:
    return K1 * ((1 - B) + B * lengths / avgdl)


def _weigh(idf: np.ndarray, norm: np.ndarray, doc: np.ndarray, term: np.ndarray,
           tf: np.ndarray) -> np.ndarray:
    """BM25 weights, Lucene's form as bm25s computes it (float32 idf times a float64
    term-frequency part, rounded to float32), so a base built here scores exactly as bm25s's
    ``index`` would; in slices (float64 temporaries of every pair were gigabytes)."""
    data = np.empty(len(doc), dtype=np.float32)
    step = 1 << 22
    for a in range(0, len(doc), step):
        d, t, f = doc[a:a + step], term[a:a + step], tf[a:a + step]
        data[a:a + step] = idf[t] * (f / (norm[d] + f))
    return data


def _idf(n: int, df: Iterable[int]) -> np.ndarray:
    """Lucene's idf per term, as bm25s: ln(1 + (N - df + 0.5) / (df + 0.5)), as float32."""
    return np.array([math.log(1 + (n - d + 0.5) / (d + 0.5)) for d in df], dtype=np.float32)


def build_index(postings: Postings, block: int = 1 << 20):
    """A bm25s index of ``postings`` (None if it has no term), its score matrix built here
    (bm25s's own ``index`` takes a Python list of tokens per document: minutes and gigabytes
    at a million chunks) and searched by bm25s. The postings' tokens are dropped once counted.

    Memory: the counted blocks (~6 bytes a pair) are placed into the final matrix (8 bytes a
    pair) by a counting sort on the term, a block at a time, and freed as they go, the tokens
    already dropped: no sort or copy of every pair at once (~24 bytes a pair beside the
    tokens). Building a million chunks' keyword index (chunks, then sentences) peaks at
    2.7 GB this way, 3.8 GB before (benchmarks/bench_service_scale.py's store)."""
    import bm25s

    n, width = len(postings), len(postings.vocab)
    if n == 0 or width == 0:
        return None
    blocks = postings.count(block)
    postings.drop_tokens()
    df = np.zeros(width, dtype=np.int64)
    for b in blocks:
        df += np.bincount(b.terms, minlength=width)
    idf, norm = _idf(n, df.tolist()), _norm(postings.lengths, float(postings.lengths.mean()))
    indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    cursor = indptr[:-1].copy()  # where each term's next document goes
    blocks.reverse()
    while blocks:  # in document order, so each term's documents stay in order
        b = blocks.pop()
        doc, term = b.docs(), b.terms
        weight = _weigh(idf, norm, doc, term, b.tf)
        order = np.argsort(term, kind="stable")
        term = term[order]
        first = np.searchsorted(term, term)  # of each entry's term, in the block's order
        dest = cursor[term] + (np.arange(len(term)) - first)
        indices[dest], data[dest] = doc[order], weight[order]
        cursor += np.bincount(term, minlength=width)
    index = bm25s.BM25(k1=K1, b=B)
    index.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n}
    index.vocab_dict = dict(postings.vocab)
    index.nonoccurrence_array = None
    _trim()
    return index


def _trim() -> None:
    """Give the freed blocks' memory back to the OS: glibc keeps freed heap pages of
    allocations under its (growing) mmap threshold: at a million chunks, RSS after the chunk
    index's build 1.67 GB without this, 1.15 GB with it."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not glibc
        ctypes.CDLL(None).malloc_trim(0)


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

    def common(self, token: str) -> bool:
        """Whether ``token`` is in more than ``COMMON_SHARE`` of the documents (and so left
        out of a query's scores); never in an index of fewer than ``COMMON_MIN_DOCS``. The
        set of such term ids is found once (a numpy scalar compared per token cost ~0.1 ms
        a question)."""
        rule = (COMMON_SHARE, COMMON_MIN_DOCS)
        found = self.__dict__.get("_common")
        if found is None or found[0] != rule:
            ids = (set(np.flatnonzero(self.df > COMMON_SHARE * self.n).tolist())
                   if self.n >= COMMON_MIN_DOCS else set())
            found = self.__dict__["_common"] = (rule, ids)
        return self.vocab.get(token, -1) in found[1]

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


def _postings(index, tokens: list[str]):
    """(documents, weights) of each of ``tokens`` that ``index`` knows, in their order."""
    m = index.scores
    data, indices, indptr = m["data"], m["indices"], m["indptr"]
    vocab = index.vocab_dict
    for token in tokens:
        t = vocab.get(token)
        if t is not None and t < len(indptr) - 1:
            a, b = int(indptr[t]), int(indptr[t + 1])
            yield indices[a:b], data[a:b]


def accumulate(index, tokens: list[str]) -> np.ndarray:
    """bm25s's ``get_scores``, summed the same way (float32, term by term, so bit for bit
    equal) but with a fancy-index add per term instead of its numpy backend's ``np.add.at``
    (18 ms of a question at a million chunks; its numba backend would need numba)."""
    scores = np.zeros(int(index.scores["num_docs"]), dtype=np.float32)
    for docs, weights in _postings(index, tokens):
        scores[docs] += weights  # a term's documents are distinct
    return scores


def accumulate_within(index, tokens: list[str], starts: np.ndarray,
                      ends: np.ndarray) -> np.ndarray:
    """``accumulate``'s scores of the documents in the ranges ``starts[i]:ends[i]`` alone (in
    order, side by side): the same float32 sums in the same order, so bit for bit equal,
    found from the part of each term's postings (in document order) inside the ranges. For a
    filter that admits a few articles' sentences of millions: ~1/40 of the postings touched,
    and no array of every sentence's score."""
    lengths = ends - starts
    shift = starts - (np.cumsum(lengths) - lengths)  # a document's place = itself - shift
    scores = np.zeros(int(lengths.sum()), dtype=np.float32)
    for docs, weights in _postings(index, tokens):
        lo, hi = np.searchsorted(docs, starts), np.searchsorted(docs, ends)
        n = hi - lo
        total = int(n.sum())
        if total:
            at = np.arange(total) + np.repeat(lo - (np.cumsum(n) - n), n)
            scores[docs[at] - np.repeat(shift, n)] += weights[at]
    return scores


def floor(index, tokens: list[str], scores: np.ndarray, k: int,
          keep: Callable[[np.ndarray], np.ndarray] | None = None) -> float | None:
    """A lower bound of the ``k``-th best of ``scores`` (``accumulate(index, tokens)``) among
    the documents ``keep`` admits (None = all): the k-th best score of ~4k admitted documents
    of the query's rarest terms. They are real scores of k documents at least, so the k-th
    best of all admitted is not lower. None when those terms hold fewer than k of them."""
    picked, total = [], 0
    for docs, _ in sorted(_postings(index, list(dict.fromkeys(tokens))), key=lambda p: len(p[0])):
        docs = docs[: 16 * k]  # any of a term's documents will do
        if keep is not None:
            docs = docs[keep(docs)]
        picked.append(docs)
        total += len(docs)
        if total >= 4 * k:
            break
    if total < k:
        return None
    docs = np.unique(np.concatenate(picked))
    if len(docs) < k:
        return None
    best = scores[docs]
    return float(np.partition(best, len(best) - k)[len(best) - k])
