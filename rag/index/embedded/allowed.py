"""The chunk ids a filter admits, known by value.

The store answers a filter with a sorted id array; searches derive costly things from it
(BM25 positions and masks, a FAISS selector that hashes every id) and keep them for the
arrays that come back. They are kept by ``cache_key``: the filter and the store generation
the ids were found at, not the array's identity.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np


class AllowedIds(np.ndarray):
    """Sorted chunk ids, with ``key``: what they are the answer to (a filter, a generation)."""

    key: Hashable | None

    @classmethod
    def of(cls, ids: Any, key: Hashable) -> AllowedIds:
        out = np.asarray(ids, dtype=np.int64).view(cls)
        out.key = key
        return out

    def __array_finalize__(self, obj: Any) -> None:
        self.key = None  # a slice or a copy is not the filter's answer


def cache_key(allowed: np.ndarray) -> Hashable:
    """The value ``allowed`` is kept by: its key, or for a plain array its bytes."""
    key = getattr(allowed, "key", None)
    return key if key is not None else ("ids", allowed.tobytes())
