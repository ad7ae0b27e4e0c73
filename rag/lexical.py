"""In-memory BM25 (bm25s) over one store generation: chunks and sentences.

The default keyword backend. SQLite FTS5 (rag/keyword.py) stays the durable keyword index
inside the store and the alternative backend; this one is derived from the store like the
FAISS index (rebuilt when the generation changes) and answers a query in well under a
millisecond at the dev-corpus size instead of several milliseconds. Tokens: the answer
module's content words (hyphenated compounds whole, stopwords out), Porter2-stemmed by
PyStemmer. A chunk's document is its text plus its title and metadata (publisher, domain,
authors, month and year), as the FTS5 index has them; sentences are indexed alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import date

import numpy as np

from rag import keyword
from rag.answer import terms

K1 = 1.2  # as SQLite FTS5 and Lucene
B = 0.75


class Tokenizer:
    def __init__(self):
        import Stemmer

        self._stem = Stemmer.Stemmer("english")
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        out = []
        for word in terms(text):
            stem = self._cache.get(word)
            if stem is None:
                stem = self._cache[word] = self._stem.stemWord(word)
            out.append(stem)
        return out


def _bm25(docs: Iterable[list[str]]):
    import bm25s

    index = bm25s.BM25(k1=K1, b=B)
    index.index(list(docs), show_progress=False)
    return index


def meta_words(source: str, domain: str, author: str | None, published: str | None) -> str:
    """The FTS5 metadata column's words without the ISO date (BM25 over chunks here)."""
    day = date.fromisoformat(published) if published else None
    return keyword.meta_words(source, domain, author, day, iso=False)


class LexicalIndex:
    """BM25 over the chunks (text, title, metadata) and over the sentences of one generation."""

    def __init__(self, db: sqlite3.Connection):
        self.tokenize = Tokenizer()
        rows = db.execute(
            "SELECT c.id, c.text, d.title, d.source, d.domain, d.author, d.published_date, "
            "c.document_id, c.char_start, c.char_end FROM chunks c "
            "JOIN documents d ON d.document_id = c.document_id ORDER BY c.document_id, "
            "c.char_start").fetchall()
        self.chunk_ids = np.array([r[0] for r in rows], dtype=np.int64)
        self._order = np.argsort(self.chunk_ids)
        self._sorted_ids = self.chunk_ids[self._order]
        docs = {d: i for i, d in enumerate(dict.fromkeys(r[7] for r in rows))}
        self.chunk_doc = np.array([docs[r[7]] for r in rows], dtype=np.int64)
        chunk_tokens = [self.tokenize(f"{r[1]} {r[2]} {meta_words(*r[3:7])}") for r in rows]
        self.chunk_lengths = np.array([len(t) for t in chunk_tokens], dtype=np.float64)
        self._chunks = _bm25(chunk_tokens) if rows else None
        # sentences, each mapped to the chunks that contain it whole
        by_doc: dict[str, list[tuple[int, int, int]]] = {}
        for pos, r in enumerate(rows):
            by_doc.setdefault(r[7], []).append((r[8], r[9], pos))
        sent_tokens: list[list[str]] = []
        sent_doc: list[int] = []
        owners: list[list[int]] = []
        bodies = db.execute("SELECT s.document_id, s.char_start, s.char_end, d.body FROM "
                            "sentences s JOIN documents d ON d.document_id = s.document_id "
                            "ORDER BY s.document_id, s.char_start")
        for doc, start, end, body in bodies:
            chunks = [p for a, b, p in by_doc.get(doc, ()) if a <= start and end <= b]
            if not chunks:
                continue
            sent_tokens.append(self.tokenize(body[start:end]))
            sent_doc.append(docs[doc])
            owners.append(chunks)
        self.sent_doc = np.array(sent_doc, dtype=np.int64)
        # sentence s lies whole in the chunks at positions _owner_pos[_owner_ptr[s]:_owner_ptr[s+1]]
        self._owner_ptr = np.cumsum([0, *map(len, owners)], dtype=np.int64)
        self._owner_count = np.diff(self._owner_ptr)
        self._owner_pos = np.array([p for o in owners for p in o], dtype=np.int64)
        self._sentences = _bm25(sent_tokens) if sent_tokens else None

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def _positions(self, allowed: np.ndarray) -> np.ndarray:
        """Positions of the ``allowed`` chunk ids (binary search: np.isin over 1M ids cost
        5 ms a query in eval/bench_scale.py)."""
        if not len(self.chunk_ids) or not len(allowed):
            return np.zeros(0, dtype=np.int64)
        idx = np.searchsorted(self._sorted_ids, allowed).clip(0, len(self._sorted_ids) - 1)
        return self._order[idx[self._sorted_ids[idx] == allowed]]

    def _allowed_docs(self, allowed: np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            return None
        return np.unique(self.chunk_doc[self._positions(allowed)])

    @staticmethod
    def _top(scores: np.ndarray, k: int) -> np.ndarray:
        """Positions of the ``k`` best positive scores, best first (ties: lower position)."""
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        return hits[np.lexsort((hits, -scores[hits]))]

    def _scores(self, index, question: str, k: int) -> np.ndarray | None:
        """BM25 scores of every item of ``index`` for ``question``; None if nothing to do."""
        tokens = self.tokenize(question)
        if index is None or not tokens or k <= 0:
            return None
        return index.get_scores(tokens)

    @staticmethod
    def _keep(scores: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """``scores`` with everything outside the boolean mask ``keep`` zeroed."""
        return np.where(keep, scores, 0.0)

    @staticmethod
    def _flags(size: int, positions: np.ndarray) -> np.ndarray:
        flags = np.zeros(size, dtype=bool)
        flags[positions] = True
        return flags

    def search(self, question: str, k: int,
               allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top ``k`` (chunk id, BM25 score) among the ``allowed`` chunk ids (None = all)."""
        scores = self._scores(self._chunks, question, k)
        if scores is None:
            return []
        if allowed is not None:
            scores = self._keep(scores, self._flags(len(scores), self._positions(allowed)))
        return [(int(self.chunk_ids[p]), float(scores[p])) for p in self._top(scores, k)]

    def sentence_search(self, question: str, k: int,
                        allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Chunks ranked by the BM25 score of the best-matching sentence they contain."""
        scores = self._scores(self._sentences, question, k)
        if scores is None:
            return []
        docs = self._allowed_docs(allowed)
        if docs is not None:
            n_docs = int(self.chunk_doc.max()) + 1 if len(self.chunk_doc) else 1
            scores = self._keep(scores, self._flags(n_docs, docs)[self.sent_doc])
        top = self._top(scores, 2 * k)  # best first
        starts, counts = self._owner_ptr[top], self._owner_count[top]
        # every (sentence, owning chunk) pair, in that order, without a Python loop
        pairs = np.arange(counts.sum()) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        pos, pair_scores = self._owner_pos[pairs], np.repeat(scores[top], counts)
        if allowed is not None:
            keep = self._flags(len(self.chunk_ids), self._positions(allowed))[pos]
            pos, pair_scores = pos[keep], pair_scores[keep]
        # a chunk's first pair holds its best sentence's score
        ids, first = np.unique(self.chunk_ids[pos], return_index=True)
        best = pair_scores[first]
        order = np.lexsort((ids, -best))[:k]
        return [(int(i), float(b)) for i, b in zip(ids[order], best[order], strict=True)]
