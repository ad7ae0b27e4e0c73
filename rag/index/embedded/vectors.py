"""FAISS behind one small interface: inner-product search over id-tagged vectors.

Vectors are L2-normalised float32, so inner product is cosine similarity. Ids are the
store's chunk ids (int64). Filters arrive as an allow-list of ids and run inside FAISS
(``IDSelectorBatch``), not as a post-filter of a short list.

The index type follows the size (benchmarks/bench_scale.py measured both at 100k and 1M chunks):
exact search (``IndexFlatIP``) below ``IVF_MIN`` vectors — 5.7 ms per query at 100k, ~55 ms at
1M on one thread — and an inverted-file index (``IndexIVFFlat``, 4 sqrt(N) lists, ``NPROBE``
probed; recall@10 0.98-0.99 against exact at 1M, 0.2-0.3 ms) from there on. A filtered IVF
search probes more lists, in proportion to how few vectors the filter allows, so that it
still sees about as many candidates as an unfiltered one.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path

import numpy as np

from rag.core.rwlock import ReadWriteLock
from rag.index.embedded.allowed import cache_key


def _faiss():
    import faiss  # lazy: keeps `rag --help` and plain imports fast

    return faiss


IVF_MIN = 500_000  # vectors from which the index is an IVF (converted when it is saved)
NPROBE = 8
SELECTOR_IDS = 2_000_000  # allowed ids the kept filter selectors may hold in all (~96 MB:
# a selector's hash set took 47.9 bytes an id, measured)


_threads: int | None = None  # set_threads's count, for every thread that searches
_local = threading.local()


def set_threads(n: int) -> None:
    """FAISS's OpenMP threads, ``n``, in every thread that uses this module from now on
    (OpenMP keeps the count per thread: a server's request threads otherwise ran with one per
    core, which then spin-waited after each search: at the dev index ~13 ms of CPU a new
    question, ~6 ms a repeated one)."""
    global _threads
    _threads = n
    _faiss().omp_set_num_threads(n)
    _local.threads = n


def _openmp() -> None:
    """This thread's OpenMP thread count set to ``set_threads``'s, once per thread."""
    if _threads is not None and getattr(_local, "threads", None) != _threads:
        _faiss().omp_set_num_threads(_threads)
        _local.threads = _threads


def nlist_for(n: int) -> int:
    """4 sqrt(N) lists, but at least 39 training points each (FAISS's k-means minimum)."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


class VectorIndex:
    def __init__(self, dim: int, index=None):
        faiss = _faiss()
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        # FAISS releases the GIL: a search running while add or remove reallocates or moves
        # the vectors read freed memory (the process crashed), so writes wait for searches
        self._rw = ReadWriteLock()
        # the selector of each recent filter (by ``cache_key``): building one hashes every
        # allowed id, ~9 ms a question at a million chunks
        self._selectors: OrderedDict[Hashable, tuple[int, object]] = OrderedDict()
        self._selectors_lock = threading.Lock()
        self._selector_ids = 0  # allowed ids the kept selectors hold

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self._index, _faiss().IndexIVF) else "flat"

    def to_ivf(self, nlist: int | None = None, seed: int = 0) -> VectorIndex:
        """The same vectors and ids in an IVF index trained on them (a flat index only)."""
        faiss = _faiss()
        if self.kind != "flat":
            return self
        with self._rw.shared():
            return self._to_ivf(faiss, nlist, seed)

    def _to_ivf(self, faiss, nlist: int | None, seed: int) -> VectorIndex:
        n = len(self)
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        # the flat index's own storage, not a copy (1.5 GB at a million vectors)
        flat = faiss.downcast_index(self._index.index)
        vectors = faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)
        nlist = nlist or nlist_for(n)
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist,
                                 faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = seed
        sample = vectors
        if n > 64 * nlist:  # k-means needs ~40-256 points per list, not all of them
            pick = np.random.default_rng(seed).choice(n, 64 * nlist, replace=False)
            sample = vectors[np.sort(pick)]
        ivf.train(np.ascontiguousarray(sample))
        ivf.add_with_ids(vectors, ids)
        return VectorIndex(self.dim, ivf)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of dimension {self.dim}, got {vectors.shape}")
        _openmp()
        with self._rw.exclusive():
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        faiss = _faiss()
        _openmp()
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        with self._rw.exclusive():
            self._index.remove_ids(selector)

    def search(self, query: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for one query vector; ids -1 are padding and dropped."""
        faiss = _faiss()
        _openmp()
        with self._rw.shared():
            return self._search(faiss, query, k, allowed)

    def _search(self, faiss, query: np.ndarray, k: int,
                allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if len(self) == 0 or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        sel = None
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            sel = self._selector(allowed)
        if self.kind == "ivf":
            share = 1.0 if allowed is None else max(len(allowed) / len(self), 1e-9)
            nprobe = min(self._index.nlist, math.ceil(NPROBE / share))
            params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
        else:
            params = None if sel is None else faiss.SearchParameters(sel=sel)
        scores, ids = self._index.search(q, min(k, len(self)), params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def _selector(self, allowed: np.ndarray):
        key = cache_key(allowed)
        with self._selectors_lock:
            kept = self._selectors.get(key)
            if kept is not None:
                self._selectors.move_to_end(key)
                return kept[1]
        sel = _faiss().IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if len(allowed) > SELECTOR_IDS // 4:  # a broad filter: not worth its memory
            return sel
        with self._selectors_lock:
            if key not in self._selectors:
                self._selectors[key] = (len(allowed), sel)
                self._selector_ids += len(allowed)
            while self._selector_ids > SELECTOR_IDS:
                self._selector_ids -= self._selectors.popitem(last=False)[1][0]
        return sel

    def save(self, path: Path) -> None:
        """Write atomically: a reader sees the old file or the new one, never half of one.
        Each save has its own temporary file (threads of one process once shared a name)."""
        from rag.index.embedded.safety import temp_path

        tmp = temp_path(path.parent, path.name)
        try:
            with self._rw.shared():
                _faiss().write_index(self._index, str(tmp))
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path, dim: int) -> VectorIndex:
        index = _faiss().read_index(str(path))
        if index.d != dim:
            raise ValueError(f"{path} holds {index.d}-dimensional vectors, expected {dim}")
        return cls(dim, index)
