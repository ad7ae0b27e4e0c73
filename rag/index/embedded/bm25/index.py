"""In-memory BM25 (bm25s) over one store generation: chunks and sentences.

The embedded index's keyword search. Derived from the store like the FAISS index (caught up
with each write by a segment, rebuilt in the back: segments.py), it answers a query in well
under a millisecond at the dev-corpus size (its scoring: scoring.py). Tokens: the package's
one tokenizer (rag/text/tokens.py). A chunk's document is its text plus its title and
metadata (publisher, domain, authors, month and year); sentences are indexed alone.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import sqlite3
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

import numpy as np

from rag.index.embedded.allowed import cache_key
from rag.index.embedded.bm25.scoring import (
    K1,
    B,
    Postings,
    Stats,
    Weighted,
    accumulate,
    accumulate_within,
    build_index,
    floor,
)
from rag.text.tokens import STOPWORDS, WORD, Tokenizer, meta_words

FILTER_CACHE = 32  # filters kept per index
SCORE_CACHE = 4  # score arrays kept per index (28 MB each for 7M sentences)
# A filter admitting at most this share of an index's chunks (or sentences) keeps their
# positions, and its searches look at those alone instead of every positive score (the
# positions of a sentence filter cost 4 bytes each: at most ~1.7 MB a filter at 7M sentences)
NARROW = 1 / 16
FORMAT = 1  # of saved indexes; with the tokenizer's rules and BM25's parameters, in SIGNATURE
SIGNATURE = hashlib.sha256(repr((FORMAT, K1, B, WORD.pattern, sorted(STOPWORDS),
                                 "porter2")).encode()).hexdigest()[:16]


def _index(postings: Postings, stats: Stats | None):
    """A base index of ``postings`` (bm25s) and its statistics, or, given a base's ``stats``,
    a segment weighed with them."""
    if stats is not None:
        return (Weighted(postings, stats) if len(postings) else None), stats
    index = build_index(postings)
    return index, Stats.of(index, postings.lengths.mean() if len(postings) else 1.0)


class _Holders:
    """The chunks of one article (``(start, end, position)`` by start) that hold a span whole;
    chunks that also end in order (as the chunker makes them) are found by bisection."""

    def __init__(self, chunks: Iterable[tuple[int, int, int]]):
        self.chunks = list(chunks)
        self.starts = [a for a, _, _ in self.chunks]
        self.ends = [b for _, b, _ in self.chunks]
        self.ordered = all(x <= y for x, y in zip(self.ends, self.ends[1:], strict=False))

    def __call__(self, start: int, end: int) -> list[int]:
        if not self.ordered:
            return [p for a, b, p in self.chunks if a <= start and end <= b]
        lo = bisect.bisect_left(self.ends, end)  # the first chunk ending at or after it
        hi = bisect.bisect_right(self.starts, start)  # past the last one starting before it
        return [p for _, _, p in self.chunks[lo:hi]]


class LexicalIndex:
    """BM25 over the chunks (text, title, metadata) and over the sentences of one generation:
    all of the store's chunks (a base, scored by bm25s), or only those written after
    generation ``since``, scored with a base's statistics (``stats``) so that the two
    indexes' scores add up (a segment: segments.py)."""

    def __init__(self, db: sqlite3.Connection, since: int | None = None,
                 stats: tuple[Stats, Stats] | None = None, tokenize: Tokenizer | None = None):
        self._start(tokenize)
        # a segment's few chunks by their generation (SQLite would rather scan every chunk
        # in document order, 56 ms at 100k chunks)
        where = ("INDEXED BY chunks_generation ", "WHERE c.generation > ? ")
        args: tuple[int, ...] = (since,) if since is not None else ()
        if since is None:
            where = ("", "")
        rows = db.execute(
            "SELECT c.id, c.text, d.title, d.source, d.domain, d.author, d.published_date, "
            f"c.document_id, c.char_start, c.char_end FROM chunks c {where[0]}"
            f"JOIN documents d ON d.document_id = c.document_id {where[1]}"
            "ORDER BY c.document_id, c.char_start", args)
        ids: list[int] = []
        chunk_terms = Postings()
        spans: dict[str, list[tuple[int, int, int]]] = {}  # document -> its chunks in order
        for r in rows:  # streamed: no chunk's text is kept
            spans.setdefault(r[7], []).append((r[8], r[9], len(ids)))
            ids.append(r[0])
            chunk_terms.add(self.tokenize(f"{r[1]} {r[2]} {meta_words(*r[3:7])}"))
        self.chunk_ids = np.array(ids, dtype=np.int64)
        self._order = np.argsort(self.chunk_ids)
        self._sorted_ids = self.chunk_ids[self._order]
        self.chunk_doc = np.repeat(np.arange(len(spans), dtype=np.int64),
                                   [len(c) for c in spans.values()])
        self.chunk_lengths = chunk_terms.lengths.astype(np.float64)
        self._chunks, chunk_stats = _index(chunk_terms, stats and stats[0])
        del chunk_terms  # before the sentences' tokens come in
        # sentences, each mapped to the chunks that contain it whole (compact arrays: ~7M
        # sentences at a million chunks)
        sent_terms = Postings()
        sent_doc, owner_count, owner_pos = array("q"), array("q"), array("q")
        for doc, (document_id, chunks) in enumerate(spans.items()):
            body = db.execute("SELECT body FROM documents WHERE document_id = ?",
                              (document_id,)).fetchone()[0]
            holders = _Holders(chunks)
            for start, end in db.execute("SELECT char_start, char_end FROM sentences WHERE "
                                         "document_id = ? ORDER BY char_start", (document_id,)):
                held = holders(start, end)
                if held:
                    sent_terms.add(self.tokenize(body[start:end]))
                    sent_doc.append(doc)
                    owner_count.append(len(held))
                    owner_pos.extend(held)
        self.sent_doc = np.array(sent_doc, dtype=np.int64)
        # sentence s lies whole in the chunks at positions _owner_pos[_owner_ptr[s]:_owner_ptr[s+1]]
        self._owner_count = np.array(owner_count, dtype=np.int64)
        self._owner_ptr = np.concatenate([[0], np.cumsum(self._owner_count)]).astype(np.int64)
        self._owner_pos = np.array(owner_pos, dtype=np.int64)
        self._sentences, sentence_stats = _index(sent_terms, stats and stats[1])
        self.stats = stats or (chunk_stats, sentence_stats)

    def _start(self, tokenize: Tokenizer | None) -> None:
        """The tokenizer and the empty caches of a new or loaded index."""
        self.tokenize = tokenize or Tokenizer()
        self._filter_cache: dict[Hashable, _Filter] = {}
        self._score_cache: OrderedDict = OrderedDict()
        self._score_lock = threading.Lock()

    ARRAYS = ("chunk_ids", "_order", "_sorted_ids", "chunk_doc", "chunk_lengths", "sent_doc",
              "_owner_ptr", "_owner_count", "_owner_pos")

    def save(self, path: Path) -> None:
        """Write a base index to the new directory ``path`` (numpy arrays and bm25s's own
        files), for ``load``."""
        path.mkdir(parents=True)
        for name in self.ARRAYS:
            np.save(path / f"{name.lstrip('_')}.npy", getattr(self, name))
        parts = {"chunks": self._chunks, "sentences": self._sentences}
        for part, index in parts.items():
            if index is not None:
                index.save(str(path / part), show_progress=False)
        (path / "meta.json").write_text(json.dumps({
            "signature": SIGNATURE, "parts": [p for p, ix in parts.items() if ix is not None],
            "avgdl": [self.stats[0].avgdl, self.stats[1].avgdl]}))

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        """A base saved by ``save``, its arrays memory-mapped (read from disk as searches
        touch them, and shared by every process that maps them); ValueError if it was
        saved by another tokenizer or format."""
        import bm25s

        meta = json.loads((path / "meta.json").read_text())
        if meta.get("signature") != SIGNATURE:
            raise ValueError(f"{path} was written by another version")
        self = cls.__new__(cls)
        self._start(None)
        for name in cls.ARRAYS:  # plain views of the maps: np.memmap's slicing is slow
            setattr(self, name, np.asarray(np.load(path / f"{name.lstrip('_')}.npy",
                                                   mmap_mode="r")))
        loaded = {p: bm25s.BM25.load(str(path / p), mmap=True, show_progress=False)
                  for p in meta["parts"]}
        for index in loaded.values():
            index.scores = {k: np.asarray(v) for k, v in index.scores.items()}
        self._chunks, self._sentences = loaded.get("chunks"), loaded.get("sentences")
        self.stats = (Stats.of(self._chunks, meta["avgdl"][0]),
                      Stats.of(self._sentences, meta["avgdl"][1]))
        return self

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def _positions(self, allowed: np.ndarray) -> np.ndarray:
        """Positions of the ``allowed`` chunk ids (binary search: np.isin over 1M ids cost
        5 ms a query in benchmarks/bench_scale.py)."""
        if not len(self.chunk_ids) or not len(allowed):
            return np.zeros(0, dtype=np.int64)
        idx = np.searchsorted(self._sorted_ids, allowed).clip(0, len(self._sorted_ids) - 1)
        return self._order[idx[self._sorted_ids[idx] == allowed]]

    def _filter(self, allowed: np.ndarray) -> _Filter:
        """What ``allowed`` admits; kept for the last few filters (by ``cache_key``: a
        question's hints search the same filters several times)."""
        key = cache_key(allowed)
        cached = self._filter_cache.get(key)
        if cached is not None:
            return cached
        found = _Filter(self, allowed)
        if len(self._filter_cache) >= FILTER_CACHE:
            self._filter_cache.clear()
        self._filter_cache[key] = found
        return found

    def _sentence_starts(self) -> np.ndarray:
        """Where each article's sentences start (and, last, their count): ``sent_doc`` is in
        article order."""
        starts = self.__dict__.get("_sent_starts")
        if starts is None:
            starts = self._sent_starts = np.searchsorted(self.sent_doc,
                                                         np.arange(self._doc_count() + 1))
        return starts

    def _doc_count(self) -> int:
        """Articles in the index (``chunk_doc`` numbers them in order); found once, not for
        every new filter (a pass over every chunk)."""
        count = self.__dict__.get("_docs")
        if count is None:
            count = self._docs = int(self.chunk_doc[-1]) + 1 if len(self.chunk_doc) else 1
        return count

    @staticmethod
    def _top(scores: np.ndarray, k: int, hits: np.ndarray | None = None) -> np.ndarray:
        """Positions of the ``k`` best positive scores (among ``hits``, the ascending positions
        still in play; None = all), best first; of equal scores the lower position first,
        also at the k-th place, so any ascending superset of the best ``k`` gives the same."""
        if hits is None:
            hits = np.flatnonzero(scores > 0)
        if k <= 0:
            return hits[:0]
        if len(hits) > k:
            s = scores[hits]
            kth = np.partition(s, len(s) - k)[len(s) - k]
            keep = s > kth
            keep[np.flatnonzero(s == kth)[: k - int(keep.sum())]] = True
            hits = hits[keep]
        return hits[np.lexsort((hits, -scores[hits]))]

    def _cached(self, index, question: str) -> _Scores | None:
        """``question``'s scores over ``index`` if they are kept (``_scored``)."""
        with self._score_lock:
            return self._score_cache.get((id(index), question))

    def _scored(self, index, question: str, k: int) -> _Scores | None:
        """``_scores``, kept for the last few texts: a question is searched again restricted
        to each publisher and date it names, with the same scores (read only: the filters
        apply to the positions)."""
        cached = self._cached(index, question)
        if cached is not None:
            return cached
        tokens = self._terms(index, question)
        if index is None or not tokens or k <= 0:
            return None
        if isinstance(index, Weighted):  # a segment's few items: every score is listed
            scored = _Scores(index.get_scores(tokens))
        else:
            scores = accumulate(index, tokens)
            scored = _Scores(scores, lambda n, keep: floor(index, tokens, scores, n, keep))
        with self._score_lock:
            self._score_cache[(id(index), question)] = scored
            while len(self._score_cache) > SCORE_CACHE:
                self._score_cache.popitem(last=False)
        return scored

    def _terms(self, index, question: str) -> list[str]:
        """The tokens of ``question`` that ``index`` scores: less its terms common in the
        base (``Stats.common``)."""
        stats = self.stats[0] if index is self._chunks else self.stats[1]
        return [t for t in self.tokenize(question) if not stats.common(t)]

    def _scores(self, index, question: str, k: int) -> np.ndarray | None:
        """BM25 scores of every item of ``index`` for ``question`` (``_terms``); None if
        nothing to do."""
        scored = self._scored(index, question, k)
        return None if scored is None else scored.scores

    @staticmethod
    def _flags(size: int, positions: np.ndarray) -> np.ndarray:
        flags = np.zeros(size, dtype=bool)
        flags[positions] = True
        return flags

    def search(self, question: str, k: int, allowed: np.ndarray | None = None,
               dropped: Dropped | None = None) -> list[tuple[int, float]]:
        """Top ``k`` (chunk id, BM25 score) among the ``allowed`` chunk ids (None = all),
        less the ``dropped`` ones."""
        scored = self._scored(self._chunks, question, k)
        if scored is None:
            return []
        scores = scored.scores
        found = self._filter(allowed) if allowed is not None else None
        if found is not None and found.positions is not None:
            hits = scored.among(found.positions)
            if dropped is not None:
                hits = hits[dropped.chunks[hits]]
        else:
            hits = scored.candidates(k, _keeping(
                found.chunks.__getitem__ if found is not None else None,
                dropped.chunks if dropped is not None else None))
        return [(int(self.chunk_ids[p]), float(scores[p])) for p in self._top(scores, k, hits)]

    def sentence_search(self, question: str, k: int, allowed: np.ndarray | None = None,
                        dropped: Dropped | None = None) -> list[tuple[int, float]]:
        """Chunks ranked by the BM25 score of the best-matching sentence they contain. Within
        a narrow filter, a text not yet scored over every sentence (a question's clause,
        searched within its publisher alone) is scored over the filter's sentences only."""
        found = self._filter(allowed) if allowed is not None else None
        narrow = found.sentences(self) if found is not None else None
        scored = (self._cached(self._sentences, question)
                  if narrow is not None and not isinstance(self._sentences, Weighted)
                  else self._scored(self._sentences, question, k))
        if scored is None and narrow is not None:
            tokens = self._terms(self._sentences, question)
            if self._sentences is None or not tokens or k <= 0:
                return []
            assert found is not None and found.ranges is not None  # narrow: found has them
            within = accumulate_within(self._sentences, tokens, *found.ranges)
            local = np.flatnonzero(within > 0)  # places in ``narrow``, ascending as it is
            if dropped is not None:
                local = local[dropped.sentences[narrow[local]]]
            local = self._top(within, 2 * k, local)
            top, top_scores = narrow[local], within[local]
        else:
            if scored is None:
                return []
            if narrow is not None:
                hits = scored.among(narrow)
                if dropped is not None:
                    hits = hits[dropped.sentences[hits]]
            else:
                docs = found.docs if found is not None else None
                hits = scored.candidates(2 * k, _keeping(
                    (lambda positions: docs[self.sent_doc[positions]]) if docs is not None
                    else None, dropped.sentences if dropped is not None else None))
            top = self._top(scored.scores, 2 * k, hits)  # best first
            top_scores = scored.scores[top]
        chunk_ok = found.chunks if found is not None else None
        if dropped is not None:
            chunk_ok = dropped.chunks if chunk_ok is None else chunk_ok & dropped.chunks
        starts, counts = self._owner_ptr[top], self._owner_count[top]
        # every (sentence, owning chunk) pair, in that order, without a Python loop
        pairs = np.arange(counts.sum()) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        pos, pair_scores = self._owner_pos[pairs], np.repeat(top_scores, counts)
        if chunk_ok is not None:
            keep = chunk_ok[pos]
            pos, pair_scores = pos[keep], pair_scores[keep]
        # a chunk's first pair holds its best sentence's score
        ids, first = np.unique(self.chunk_ids[pos], return_index=True)
        best = pair_scores[first]
        order = np.lexsort((ids, -best))[:k]
        return [(int(i), float(b)) for i, b in zip(ids[order], best[order], strict=True)]


class _Scores:
    """One text's BM25 scores over an index. What a search looks at: the positive ones within
    a narrow filter (``among``), else those that can be among the best ``k`` (``candidates``);
    the list of every positive one is made only if that is all there is (a question's clauses
    are searched only within a publisher: at 7M sentences, ~500k positive scores cost 5-8 ms
    to list, a mispredicted branch per score at that density)."""

    def __init__(self, scores: np.ndarray,
                 bound: Callable[[int, Keep | None], float | None] | None = None):
        self.scores = scores
        self._bound = bound
        self._hits: np.ndarray | None = None

    @property
    def hits(self) -> np.ndarray:
        if self._hits is None:  # two threads may both find them: the same array
            self._hits = np.flatnonzero(self.scores > 0)
        return self._hits

    def candidates(self, k: int, keep: Keep | None) -> np.ndarray:
        """Ascending positions ``keep`` admits (None = all) that hold the ``k`` best scores
        among those it admits, ties included: the scores not below a lower bound of that
        k-th best (``bm25.floor``) — a few thousand of the hundreds of thousands positive."""
        bound = self._bound(k, keep) if self._bound is not None else None
        found = self.hits if bound is None else np.flatnonzero(self.scores >= bound)
        return found if keep is None else found[keep(found)]

    def among(self, positions: np.ndarray) -> np.ndarray:
        """The ``positions`` (ascending) with a positive score: the hits a narrow filter
        admits, in the same order, so the same top ``k`` is chosen either way."""
        return positions[self.scores[positions] > 0]


Keep = Callable[[np.ndarray], np.ndarray]  # positions -> which of them a search admits


def _keeping(admit: Keep | None, alive: np.ndarray | None) -> Keep | None:
    """The positions a search admits: those its filter ``admit``s (None = all) that are not
    dropped (``alive`` at them; None = none is); None = all."""
    if alive is None:
        return admit
    if admit is None:
        return alive.__getitem__
    return lambda positions: admit(positions) & alive[positions]


class _Filter:
    """What one ``allowed`` array admits in a ``LexicalIndex``: masks of its chunks and
    articles and, for a narrow filter (at most ``NARROW`` of the index), the ascending
    positions of its chunks and (found when first asked) of its articles' sentences."""

    def __init__(self, index: LexicalIndex, allowed: np.ndarray):
        positions = index._positions(allowed)
        self.chunks = index._flags(len(index.chunk_ids), positions)
        self.docs = index._flags(index._doc_count(), index.chunk_doc[positions])
        self.positions = (np.sort(positions) if len(positions) <= NARROW * len(index.chunk_ids)
                          else None)
        self._sentences: np.ndarray | None = None
        self.ranges: tuple[np.ndarray, np.ndarray] | None = None  # of those sentences
        self._wide = False

    def sentences(self, index: LexicalIndex) -> np.ndarray | None:
        """Ascending positions of the admitted articles' sentences; None if they are over
        ``NARROW`` of the index's."""
        if self._sentences is None and not self._wide:
            starts = index._sentence_starts()
            docs = np.flatnonzero(self.docs)
            lo, counts = starts[docs], starts[docs + 1] - starts[docs]
            total = int(counts.sum())
            if total > NARROW * len(index.sent_doc):
                self._wide = True
                return None
            self.ranges = (lo, lo + counts)
            dtype = np.int32 if len(index.sent_doc) < 1 << 31 else np.int64
            self._sentences = (np.arange(total, dtype=dtype)
                               + np.repeat((lo - (np.cumsum(counts) - counts)).astype(dtype),
                                           counts))
        return self._sentences


class Dropped:
    """What of a ``LexicalIndex`` is gone from the store (deleted since it was built): a mask
    of its chunks to keep, and of its sentences (kept while any chunk holding them is).
    Given the index's ``before`` masks (for fewer deletions), only the sentences of the
    articles that lost a chunk since are looked at again (7M sentences at a million chunks:
    ~0.1 s each write otherwise)."""

    count: int
    chunks: np.ndarray
    sentences: np.ndarray

    def __init__(self, index: LexicalIndex, removed: np.ndarray, before: Dropped | None = None):
        gone = index._positions(removed)
        self.count = len(gone)
        self.chunks = ~index._flags(len(index), gone)
        if before is not None and not (self.chunks & ~before.chunks).any():
            self.sentences = before.sentences.copy()
            docs = np.unique(index.chunk_doc[before.chunks & ~self.chunks])
            lo = np.searchsorted(index.sent_doc, docs, side="left")
            hi = np.searchsorted(index.sent_doc, docs, side="right")
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
                self.sentences[a:b] = self._alive(index, a, b)
        else:
            self.sentences = self._alive(index, 0, len(index.sent_doc))

    @classmethod
    def nothing(cls, index: LexicalIndex) -> Dropped:
        """Masks of an index that has lost nothing (to grow a first deletion's from)."""
        self = cls.__new__(cls)
        self.count = 0
        self.chunks = np.ones(len(index), dtype=bool)
        self.sentences = np.ones(len(index.sent_doc), dtype=bool)
        return self

    def _alive(self, index: LexicalIndex, a: int, b: int) -> np.ndarray:
        """Whether sentences ``a:b`` lie in a chunk that is kept (each lies in one at least)."""
        if a == b:
            return np.zeros(0, dtype=bool)
        ptr = index._owner_ptr[a:b + 1]
        alive = self.chunks[index._owner_pos[ptr[0]:ptr[-1]]].astype(np.int64)
        return np.add.reduceat(alive, ptr[:-1] - ptr[0]) > 0
