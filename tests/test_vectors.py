"""FAISS results checked against brute-force numpy on seeded data."""

from __future__ import annotations

import numpy as np
import pytest

from rag.vectors import VectorIndex


def unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_search_matches_numpy(seed):
    base, queries = unit(500, 32, seed), unit(20, 32, seed + 100)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index = VectorIndex(32)
    index.add(ids, base)
    for q in queries:
        scores, got = index.search(q, 10)
        oracle = np.argsort(-(base @ q), kind="stable")[:10]
        assert list(got) == list(ids[oracle])
        np.testing.assert_allclose(scores, (base @ q)[oracle], rtol=1e-5)


def test_allow_list_is_exact_not_a_post_filter():
    base, q = unit(300, 16, 7), unit(1, 16, 8)[0]
    ids = np.arange(300, dtype=np.int64)
    index = VectorIndex(16)
    index.add(ids, base)
    allowed = ids[ids % 7 == 3]
    _, got = index.search(q, 5, allowed)
    oracle = allowed[np.argsort(-(base[allowed] @ q))[:5]]
    assert list(got) == list(oracle)
    assert len(index.search(q, 5, np.zeros(0, np.int64))[1]) == 0


def test_remove_save_load_roundtrip(tmp_path):
    base = unit(50, 8, 3)
    index = VectorIndex(8)
    index.add(np.arange(50), base)
    index.remove(np.array([0, 1, 2]))
    assert len(index) == 47
    path = tmp_path / "v.faiss"
    index.save(path)
    loaded = VectorIndex.load(path, 8)
    assert len(loaded) == 47
    _, got = loaded.search(base[0], 50)
    assert 0 not in got and set(got) == set(range(3, 50))
    with pytest.raises(ValueError):
        VectorIndex.load(path, 9)


def test_wrong_dimension_is_refused():
    with pytest.raises(ValueError):
        VectorIndex(8).add(np.arange(2), unit(2, 9, 0))
