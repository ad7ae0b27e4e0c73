"""The in-memory keyword index of a changing store: a base plus segments, merged in the back.

A full build of the BM25 index (index.py) reads and tokenizes every chunk and sentence
of the store: 1.5 s at the dev corpus (4,583 chunks), minutes at a million. So, as the FAISS
index catches up from its file (../vector_files.py), the keyword index catches up with each
write: a *segment* indexes only the chunks written since the last generation it saw, scored
with the base's statistics (document count, mean length, document frequencies) so that its
scores add up with the base's, and the chunks deleted since the base are masked out of every
part. A query searches every part and keeps the best ``k``.

The statistics of a base grow stale as segments pile up, so once the segments and deletions
reach a tenth of the base (``Policy.fraction``), one background thread builds a new base of
the whole store, while queries go on with the current view; more than ``max_segments``
segments are first folded into one. An index of at most ``Policy.small`` chunks is rebuilt
whole on each change instead (well under a second, and its statistics stay exact).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.index.embedded.bm25.index import Dropped, LexicalIndex
from rag.index.embedded.vector_files import GenerationFiles, tombstoned_since

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    small: int = 2_000  # chunks: an index this small is rebuilt whole on every change
    fraction: float = 0.1  # segments + deletions, over the base, that start a new base
    max_segments: int = 8  # more are folded into one segment


class LexicalView:
    """One generation of the store, as keyword indexes: a base (built at
    ``base_generation``) and the segments written since, less what was deleted since."""

    def __init__(self, parts: list[tuple[LexicalIndex, Dropped | None]],
                 base_generation: int, generation: int):
        self.parts = parts
        self.base_generation = base_generation
        self.generation = generation

    @classmethod
    def build(cls, db: sqlite3.Connection, generation: int) -> LexicalView:
        return cls([(LexicalIndex(db), None)], generation, generation)

    @property
    def base(self) -> LexicalIndex:
        return self.parts[0][0]

    @property
    def segments(self) -> int:
        return len(self.parts) - 1

    @property
    def changed(self) -> int:
        """Chunks written or deleted since the base (what a new base would fold in)."""
        return sum(len(ix) for ix, _ in self.parts[1:]) + sum(
            d.count for _, d in self.parts if d is not None)

    def __len__(self) -> int:
        return sum(len(ix) - (d.count if d is not None else 0) for ix, d in self.parts)

    def search(self, question: str, k: int,
               allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        return _best([ix.search(question, k, allowed, d) for ix, d in self.parts], k)

    def sentence_search(self, question: str, k: int,
                        allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        return _best([ix.sentence_search(question, k, allowed, d) for ix, d in self.parts], k)


def _best(rankings: list[list[tuple[int, float]]], k: int) -> list[tuple[int, float]]:
    """The best ``k`` of disjoint rankings (each best first; ties: lower chunk id)."""
    if len(rankings) == 1:
        return rankings[0]
    merged = [hit for ranking in rankings for hit in ranking]
    return sorted(merged, key=lambda hit: (-hit[1], hit[0]))[:k]


def catch_up(db: sqlite3.Connection, view: LexicalView, generation: int) -> LexicalView:
    """``view`` brought to ``generation``: a segment of the chunks written after its own
    generation, and every part masked for the chunks deleted after its base's."""
    segment = LexicalIndex(db, since=view.generation, stats=view.base.stats,
                           tokenize=view.base.tokenize)
    indexes = [ix for ix, _ in view.parts] + ([segment] if len(segment) else [])
    removed = tombstoned_since(db, view.base_generation)
    # each part's masks grow from its last ones (a new segment's are made whole)
    before = {id(ix): d or Dropped.nothing(ix) for ix, d in view.parts} if len(removed) else {}
    parts = [(ix, Dropped(ix, removed, before.get(id(ix))) if len(removed) else None)
             for ix in indexes]
    return LexicalView(parts, view.base_generation, generation)


class LexicalFiles(GenerationFiles):
    """Saved bases of an index directory, ``lexical-<generation>/``, so that a server starts
    from the newest one and catches up, instead of building one (minutes at a million
    chunks). Written to a temporary name and renamed into place; older ones are removed."""

    prefix = "lexical"

    def load_latest(self, generation: int) -> tuple[LexicalIndex, int] | None:
        """The newest readable base not newer than ``generation``."""
        for saved in reversed(self.generations()):
            if saved > generation:
                continue
            try:
                return LexicalIndex.load(self.path(saved)), saved
            except Exception as exc:  # noqa: BLE001 - unreadable or another version: older
                log.warning("ignoring saved keyword index %s: %s", self.path(saved), exc)
        return None

    def save(self, index: LexicalIndex, generation: int) -> None:
        target = self.path(generation)
        if target.exists():
            return
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".lexical-{generation:010d}.{os.getpid()}.",
                                        suffix=".tmp", dir=self.dir))
            tmp.rmdir()  # LexicalIndex.save makes it
        except OSError as exc:
            log.warning("could not save the keyword index to %s: %s", target, exc)
            return
        try:
            index.save(tmp)
            os.rename(tmp, target)  # fails if another saved it first: theirs stays
        except OSError as exc:
            if not target.exists():
                log.warning("could not save the keyword index to %s: %s", target, exc)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in self.generations():
            if old < generation:
                shutil.rmtree(self.path(old), ignore_errors=True)


def _generation(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


class LexicalSegments:
    """The current ``LexicalView`` of one store, caught up on demand and merged in the back.

    ``read`` opens a read transaction on the calling thread's connection; ``close`` closes
    the calling thread's connection (the merge thread's, when it is done)."""

    def __init__(self, read: Callable[[], AbstractContextManager[sqlite3.Connection]],
                 close: Callable[[], None], files: LexicalFiles | None = None,
                 policy: Policy | None = None):
        self._read = read
        self._close = close
        self.files = files
        self.policy = policy or Policy()
        self._view: LexicalView | None = None
        self._lock = threading.Lock()
        self._merge: threading.Thread | None = None

    def view(self, generation: int) -> LexicalView:
        """The view at ``generation`` or later (the store's current one)."""
        current = self._view
        if current is not None and current.generation >= generation:
            return current
        with self._lock:
            with self._read() as db:
                now = _generation(db)
                view = self._view
                if view is None:
                    view = self._saved(db, now)
                if view is None or len(view) <= self.policy.small:
                    if view is None or view.generation < now:
                        view = LexicalView.build(db, now)
                        self._save_later(view)
                elif view.generation < now:
                    view = catch_up(db, view, now)
                self._view = view
            self._maybe_merge(view)
            return view

    def _saved(self, db: sqlite3.Connection, now: int) -> LexicalView | None:
        """The newest saved base, caught up to ``now``; None if there is none."""
        loaded = self.files.load_latest(now) if self.files is not None else None
        if loaded is None:
            return None
        base, generation = loaded
        return catch_up(db, LexicalView([(base, None)], generation, generation), now)

    def _save_later(self, view: LexicalView) -> None:
        """Save a new base in the back, unless it is small enough to build on each start."""
        if self.files is not None and view.segments == 0 and len(view) > self.policy.small:
            threading.Thread(target=self.files.save, args=(view.base, view.base_generation),
                             name="lexical-save", daemon=True).start()

    def merging(self) -> bool:
        merge = self._merge
        return merge is not None and merge.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Until a background merge (if any) is done."""
        merge = self._merge
        if merge is not None:
            merge.join(timeout)

    def _maybe_merge(self, view: LexicalView) -> None:
        if self.merging() or len(view) <= self.policy.small:
            return
        whole = view.changed > self.policy.fraction * max(len(view.base), 1)
        if whole or view.segments > self.policy.max_segments:
            self._merge = threading.Thread(target=self._merged, args=(view, whole),
                                           name="lexical-merge", daemon=True)
            self._merge.start()

    def _merged(self, view: LexicalView, whole: bool) -> None:
        """Build a new base (``whole``) or fold the segments into one, off the query path;
        then catch up with what was written meanwhile, and swap it in."""
        try:
            with self._read() as db:
                now = _generation(db)
                if whole:
                    new = LexicalView.build(db, now)
                else:
                    base = LexicalView([(view.base, None)], view.base_generation,
                                       view.base_generation)
                    new = catch_up(db, base, now)  # all the segments as one
            with self._lock:
                with self._read() as db:
                    now = _generation(db)
                    if new.generation < now:
                        new = catch_up(db, new, now)
                if self._view is None or self._view.generation <= new.generation:
                    self._view = new
            if whole and self.files is not None and len(new.base) > self.policy.small:
                self.files.save(new.base, new.base_generation)
        except Exception:  # noqa: BLE001 - queries go on with the current view; tried again
            log.exception("merging the keyword index failed")
        finally:
            self._close()
