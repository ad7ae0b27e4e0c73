"""FAISS files of an index directory, one per store generation, and catching them up.

``vectors-<generation>.faiss`` reflects the store at that generation. Chunks remember the
generation that added them and deleted chunks leave tombstones, so an older file is brought
up to date from the delta; with no readable file the index is rebuilt from stored embeddings.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from rag.index.embedded.vectors import VectorIndex


class GenerationFiles:
    """Files (or directories) of an index directory named ``<prefix>-<generation><suffix>``."""

    prefix = ""
    suffix = ""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def path(self, gen: int) -> Path:
        return self.dir / f"{self.prefix}-{gen:010d}{self.suffix}"

    def generations(self) -> list[int]:
        gens = []
        for p in self.dir.glob(f"{self.prefix}-*{self.suffix}"):
            try:
                gens.append(int(p.name[len(self.prefix) + 1:len(p.name) - len(self.suffix)]))
            except ValueError:
                continue
        return sorted(gens)


class VectorFiles(GenerationFiles):
    prefix, suffix = "vectors", ".faiss"

    def load_latest(self, dim: int, gen: int) -> tuple[VectorIndex, int]:
        """The newest readable file not newer than ``gen`` (or an empty index at 0)."""
        for saved in reversed(self.generations()):
            if saved > gen:
                continue
            try:
                return VectorIndex.load(self.path(saved), dim), saved
            except Exception:  # noqa: BLE001 - unreadable file: fall back to an older one
                continue
        return VectorIndex(dim), 0

    def save(self, index: VectorIndex, gen: int, replace: bool = False) -> Path:
        path = self.path(gen)
        if replace or not path.exists():
            index.save(path)
        for old in self.generations():
            if old < gen:
                self.path(old).unlink(missing_ok=True)
        return path


def tombstoned_since(db: sqlite3.Connection, generation: int) -> np.ndarray:
    """Ids of the chunks deleted after ``generation`` (each write's delta, with its new
    chunks' ``generation``)."""
    return np.array([r[0] for r in db.execute(
        "SELECT chunk_id FROM tombstones WHERE generation > ?", (generation,))], dtype=np.int64)


def catch_up(db: sqlite3.Connection, index: VectorIndex, base: int, gen: int) -> None:
    """Apply to ``index`` (at generation ``base``) every change up to generation ``gen``."""
    if base >= gen:
        return
    index.remove(tombstoned_since(db, base))
    rows = db.execute(
        "SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.hash = c.embed_hash "
        "WHERE c.generation > ?", (base,))
    while batch := rows.fetchmany(10_000):
        ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
        vecs = np.frombuffer(b"".join(r[1] for r in batch), dtype=np.float32)
        index.add(ids, vecs.reshape(len(batch), -1))
