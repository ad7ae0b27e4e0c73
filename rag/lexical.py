"""In-memory BM25 (bm25s) over one store generation: chunks and sentences.

The default keyword backend. SQLite FTS5 (rag/keyword.py) stays the durable keyword index
inside the store and the alternative backend; this one is derived from the store like the FAISS
index (caught up with each write by a segment, rebuilt in the back: rag/segments.py) and
answers a query in well under a millisecond at the dev-corpus size instead of several
milliseconds (its scoring: rag/bm25.py). Tokens: the answer module's content words (hyphenated
compounds whole, stopwords out), Porter2-stemmed by PyStemmer. A chunk's document is its text
plus its title and metadata (publisher, domain, authors, month and year), as the FTS5 index has
them; sentences are indexed alone.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import sqlite3
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import numpy as np

from rag import keyword
from rag.answer import STOPWORDS, WORD
from rag.bm25 import K1, B, Postings, Stats, Weighted, accumulate, build_index

MASK_CACHE = 32  # filter masks kept per index
SCORE_CACHE = 4  # score arrays kept per index (28 MB each for 7M sentences)
FORMAT = 1  # of saved indexes; with the tokenizer's rules and BM25's parameters, in SIGNATURE
SIGNATURE = hashlib.sha256(repr((FORMAT, K1, B, WORD.pattern, sorted(STOPWORDS),
                                 "porter2")).encode()).hexdigest()[:16]


class Tokenizer:
    """The answer module's content words, Porter2-stemmed; each distinct word is looked up
    (stopword or stem) once per process, then read from a dict."""

    def __init__(self):
        import Stemmer

        self._stem = Stemmer.Stemmer("english")
        self._cache: dict[str, str] = {}  # word -> its stem, "" for a stopword

    def __call__(self, text: str) -> list[str]:
        words = WORD.findall(text.lower())
        cache = self._cache
        try:
            stems = [cache[w] for w in words]
        except KeyError:
            for w in words:
                if w not in cache:
                    cache[w] = "" if w in STOPWORDS else self._stem.stemWord(w)
            stems = [cache[w] for w in words]
        return [s for s in stems if s]


def _index(postings: Postings, stats: Stats | None):
    """A base index of ``postings`` (bm25s) and its statistics, or, given a base's ``stats``,
    a segment weighed with them."""
    if stats is not None:
        return (Weighted(postings, stats) if len(postings) else None), stats
    index = build_index(postings)
    return index, Stats.of(index, postings.lengths.mean() if len(postings) else 1.0)


def meta_words(source: str, domain: str, author: str | None, published: str | None) -> str:
    """The FTS5 metadata column's words without the ISO date (BM25 over chunks here)."""
    day = date.fromisoformat(published) if published else None
    return keyword.meta_words(source, domain, author, day, iso=False)


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
    indexes' scores add up (a segment: rag/segments.py)."""

    def __init__(self, db: sqlite3.Connection, since: int | None = None,
                 stats: tuple[Stats, Stats] | None = None, tokenize: Tokenizer | None = None):
        self._start(tokenize)
        # a segment's few chunks by their generation (SQLite would rather scan every chunk
        # in document order, 56 ms at 100k chunks)
        where, args = ("INDEXED BY chunks_generation ", "WHERE c.generation > ? "), (since,)
        if since is None:
            where, args = ("", ""), ()
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
        self._mask_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
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
        5 ms a query in eval/bench_scale.py)."""
        if not len(self.chunk_ids) or not len(allowed):
            return np.zeros(0, dtype=np.int64)
        idx = np.searchsorted(self._sorted_ids, allowed).clip(0, len(self._sorted_ids) - 1)
        return self._order[idx[self._sorted_ids[idx] == allowed]]

    def _masks(self, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which chunks, and which articles, an ``allowed`` array admits, as boolean masks;
        kept for the last few arrays (the store hands out one array per filter, and a
        question's hints search the same filters several times)."""
        cached = self._mask_cache.get(id(allowed))
        if cached is not None and cached[0] is allowed:
            return cached[1], cached[2]
        positions = self._positions(allowed)
        chunks = self._flags(len(self.chunk_ids), positions)
        n_docs = int(self.chunk_doc.max()) + 1 if len(self.chunk_doc) else 1
        docs = self._flags(n_docs, self.chunk_doc[positions])
        if len(self._mask_cache) >= MASK_CACHE:
            self._mask_cache.clear()
        self._mask_cache[id(allowed)] = (allowed, chunks, docs)
        return chunks, docs

    @staticmethod
    def _top(scores: np.ndarray, k: int, hits: np.ndarray | None = None) -> np.ndarray:
        """Positions of the ``k`` best positive scores (among ``hits``, the positions still
        in play; None = all), best first (ties: lower position)."""
        if hits is None:
            hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        return hits[np.lexsort((hits, -scores[hits]))]

    def _scored(self, index, question: str, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``_scores`` and the positions of the positive ones, kept for the last few texts: a
        question is searched again restricted to each publisher and date it names, with the
        same scores (read only: the filters apply to the positions)."""
        key = (id(index), question)
        with self._score_lock:
            cached = self._score_cache.get(key)
        if cached is not None:
            return cached
        scores = self._scores(index, question, k)
        if scores is None:
            return None
        scored = (scores, np.flatnonzero(scores > 0))
        with self._score_lock:
            self._score_cache[key] = scored
            while len(self._score_cache) > SCORE_CACHE:
                self._score_cache.popitem(last=False)
        return scored

    def _scores(self, index, question: str, k: int) -> np.ndarray | None:
        """BM25 scores of every item of ``index`` for ``question``, less its terms that are
        common in the base (``Stats.common``); None if nothing to do."""
        stats = self.stats[0] if index is self._chunks else self.stats[1]
        tokens = [t for t in self.tokenize(question) if not stats.common(t)]
        if index is None or not tokens or k <= 0:
            return None
        if isinstance(index, Weighted):
            return index.get_scores(tokens)
        return accumulate(index, tokens)

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
        scores, hits = scored  # filters are looked up at the hits only
        if allowed is not None:
            hits = hits[self._masks(allowed)[0][hits]]
        if dropped is not None:
            hits = hits[dropped.chunks[hits]]
        return [(int(self.chunk_ids[p]), float(scores[p])) for p in self._top(scores, k, hits)]

    def sentence_search(self, question: str, k: int, allowed: np.ndarray | None = None,
                        dropped: Dropped | None = None) -> list[tuple[int, float]]:
        """Chunks ranked by the BM25 score of the best-matching sentence they contain."""
        scored = self._scored(self._sentences, question, k)
        if scored is None:
            return []
        scores, hits = scored
        chunk_ok = None
        if allowed is not None:
            chunk_ok, doc_ok = self._masks(allowed)
            hits = hits[doc_ok[self.sent_doc[hits]]]
        if dropped is not None:
            hits = hits[dropped.sentences[hits]]
            chunk_ok = dropped.chunks if chunk_ok is None else chunk_ok & dropped.chunks
        top = self._top(scores, 2 * k, hits)  # best first
        starts, counts = self._owner_ptr[top], self._owner_count[top]
        # every (sentence, owning chunk) pair, in that order, without a Python loop
        pairs = np.arange(counts.sum()) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        pos, pair_scores = self._owner_pos[pairs], np.repeat(scores[top], counts)
        if chunk_ok is not None:
            keep = chunk_ok[pos]
            pos, pair_scores = pos[keep], pair_scores[keep]
        # a chunk's first pair holds its best sentence's score
        ids, first = np.unique(self.chunk_ids[pos], return_index=True)
        best = pair_scores[first]
        order = np.lexsort((ids, -best))[:k]
        return [(int(i), float(b)) for i, b in zip(ids[order], best[order], strict=True)]


class Dropped:
    """What of a ``LexicalIndex`` is gone from the store (deleted since it was built): a mask
    of its chunks to keep, and of its sentences (kept while any chunk holding them is).
    Given the index's ``before`` masks (for fewer deletions), only the sentences of the
    articles that lost a chunk since are looked at again (7M sentences at a million chunks:
    ~0.1 s each write otherwise)."""

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
