"""FAISS results checked against brute-force numpy on seeded data."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rag.index.embedded.vectors import VectorIndex

from helpers import articles


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


def clustered(rows: int, dim: int, seed: int, centers: int = 40) -> np.ndarray:
    """Low-rank, clustered unit vectors (uniform random ones make IVF recall meaningless)."""
    rng = np.random.default_rng(seed)
    basis = unit(centers, dim, seed + 1)
    x = basis[rng.integers(0, centers, rows)] + 0.15 * rng.normal(size=(rows, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_ivf_keeps_ids_recall_filters_and_removal(tmp_path):
    base, queries = clustered(6000, 32, 3), clustered(50, 32, 4)
    ids = np.arange(10_000, 16_000, dtype=np.int64)
    flat = VectorIndex(32)
    flat.add(ids, base)
    ivf = flat.to_ivf(nlist=60)
    assert (flat.kind, ivf.kind, len(ivf)) == ("flat", "ivf", 6000)
    recall = np.mean([len(set(ivf.search(q, 10)[1]) & set(flat.search(q, 10)[1])) / 10
                      for q in queries])
    assert recall >= 0.9
    # a narrow filter probes more lists: every allowed vector is still found, best first
    allowed = ids[::97]
    for q in queries[:10]:
        _, got = ivf.search(q, 5, allowed)
        oracle = allowed[np.argsort(-(base[::97] @ q))[:5]]
        assert list(got) == list(oracle)
    ivf.remove(ids[:3000])
    assert len(ivf) == 3000 and set(ivf.search(queries[0], 50)[1]) <= set(ids[3000:])
    ivf.save(tmp_path / "v.faiss")
    again = VectorIndex.load(tmp_path / "v.faiss", 32)
    assert again.kind == "ivf" and list(again.search(queries[1], 10)[1]) == list(
        ivf.search(queries[1], 10)[1])


def test_store_saves_an_ivf_index_once_it_is_large(tmp_path, hash_embedder):
    from conftest import open_service

    svc = open_service(tmp_path, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    svc.ingest_articles(articles(6))
    assert svc.index.vectors()[0].kind == "flat"
    n = len(svc.index.vectors()[0])
    svc.index.save_vectors(ivf_min=n)
    reader = type(svc.index).open(tmp_path)
    index, _ = reader.vectors()
    assert index.kind == "ivf" and len(index) == n
    svc.ingest_articles(articles(8))  # later writes are applied to the IVF index
    assert len(reader.vectors()[0]) == svc.index.counts()["chunks"]


def test_thread_count_holds_in_every_thread_that_searches():
    """OpenMP keeps its thread count per thread: a server's request threads ran FAISS with one
    thread per core (and their spin-waits) whatever ``set_threads`` said in the main thread."""
    import threading

    import faiss

    from rag.index.embedded import vectors

    before = faiss.omp_get_max_threads()
    wanted = (os.cpu_count() or 1) + 1  # never a new thread's default
    index = VectorIndex(4)
    index.add(np.arange(3), np.eye(3, 4, dtype=np.float32))
    seen = {}

    def search():
        index.search(np.eye(1, 4, dtype=np.float32)[0], 2)
        seen["threads"] = faiss.omp_get_max_threads()

    try:
        vectors.set_threads(wanted)
        worker = threading.Thread(target=search)
        worker.start()
        worker.join()
    finally:
        vectors.set_threads(before)
    assert seen["threads"] == wanted


def test_a_filter_selector_is_kept_per_filter_and_never_mixed_up(monkeypatch):
    from rag.index.embedded import vectors
    from rag.index.embedded.allowed import AllowedIds

    base, q = unit(300, 16, 7), unit(1, 16, 8)[0]
    ids = np.arange(300, dtype=np.int64)
    index = VectorIndex(16)
    index.add(ids, base)
    odd = AllowedIds.of(ids[ids % 2 == 1], ("odd", 1))
    even = AllowedIds.of(ids[ids % 2 == 0], ("even", 1))
    first = index.search(q, 5, odd)
    kept = index._selectors[("odd", 1)][1]
    again = AllowedIds.of(ids[ids % 2 == 1], ("odd", 1))  # another array, the same filter
    assert index.search(q, 5, again)[1].tolist() == first[1].tolist()
    assert index._selectors[("odd", 1)][1] is kept  # reused, not rebuilt
    _, got = index.search(q, 5, even)
    assert got.tolist() == even[np.argsort(-(base[even] @ q))[:5]].tolist()
    plain = np.array(ids[ids % 3 == 0])  # no key: kept by its values
    assert index.search(q, 5, plain)[1].tolist() == index.search(q, 5, plain.copy())[1].tolist()
    monkeypatch.setattr(vectors, "SELECTOR_IDS", 400)
    for n in range(40):  # more ids than it keeps: the oldest go
        index.search(q, 1, AllowedIds.of(ids[ids % 40 == n], ("mod", n)))
    assert index._selector_ids == sum(n for n, _ in index._selectors.values()) <= 400
    assert ("odd", 1) not in index._selectors
