"""Scale benchmark for the vector and keyword layers, up to ~1M chunks of 384-d vectors.

    # smoke run, under a minute (N = 20,000)
    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --quick --basis /tmp/dev/rag.sqlite3
    # the keyword layer alone at 100k chunks (~15 s here, 2 cores)
    .venv/bin/python benchmarks/bench_scale.py --sizes 100000 --keyword-only \
        --basis /tmp/dev/rag.sqlite3
    # the full run (N = 100,000 and 1,000,000), about an hour on one core; progress on stderr
    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --sizes 100000 1000000 \
        --index flat hnsw:32:40 hnsw:32:100 hnsw:48:200 ivf:4 --basis /tmp/dev/rag.sqlite3

The basis is a dev index (``rag ingest eval/data/multihop-rag-dev/corpus.json --index
/tmp/dev``); without it the vectors and words are synthetic. Each run writes
benchmarks/results/bench_scale.json (benchmarks/common.py: the settings, the machine and the
commit beside the figures, with ratios against flat search at the same N); ``--json`` also
writes the figures alone, and ``--report FILE`` prints the report of either file.

Every measurement runs in a fresh subprocess (this script re-invoked with ``--worker``) with
``OMP_NUM_THREADS=1`` and ``faiss.omp_set_num_threads(1)``, so peak RSS
(``ru_maxrss``) belongs to one configuration, and one core is used at a time.

Per size N and FAISS index (``--index``; each wrapped in ``IndexIDMap2``, as
``rag.index.embedded.vectors.VectorIndex`` does):

- ``flat``: ``IndexFlatIP``, exact (today's index);
- ``hnsw:M:efC``: ``IndexHNSWFlat(384, M, METRIC_INNER_PRODUCT)``, ``efConstruction`` = efC;
  ``efSearch`` is swept;
- ``ivf:F``: ``IndexIVFFlat`` (inner product; faiss trains it by spherical k-means, 10
  iterations) with nlist = F * sqrt(N), trained on the first 64 * nlist vectors; ``nprobe`` is
  swept.

A *build* worker generates the vectors block by block, builds the index and writes it to
``--workdir`` (build time excludes generating the vectors; file size; build peak RSS, which
includes one block of vectors). A *serve* worker reads the file back (load time; serve peak RSS)
and, at each value of the swept parameter, times single-query ``search(k=10)`` over
``--queries`` (200) held-out queries (p50 / p99) and computes recall@10 against exact search
(numpy brute force over the same vectors) over ``--recall-queries`` (1000) held-out queries.
The parameter reported is the smallest one whose recall@10 on ``--tune-queries`` (1000) other
queries reaches ``--recall-target`` (0.95), so the reported recall is on queries the choice did
not see.

Vector generator (``make_vectors``): a basis of real all-MiniLM-L6-v2 chunk embeddings, read
from the ``embeddings(hash, vector)`` table of an index's ``rag.sqlite3`` (``--basis``;
~4,934 L2-normalised float32 vectors of the dev corpus). Each generated vector is a sparse
mixture of ``--mix`` (3) basis vectors picked uniformly at random, weighted by
Dirichlet(``--alpha`` = 0.5) weights, plus isotropic gaussian noise of standard deviation
``--noise`` (0.01) per dimension, then L2-normalised. With these defaults, at N = 4,934, the
median cosine of a vector's nearest / 10th-nearest neighbour is 0.79 / 0.61 and the mean pairwise
cosine 0.18 (the real embeddings: 0.84 / 0.70 / 0.12), i.e. slightly harder than the real data.
Queries are drawn the same way from other random streams (never in the index). Without the basis
file, the basis is a seeded low-rank gaussian instead: 4,096 vectors of rank 64 plus noise,
L2-normalised (results then say ``basis: synthetic``).

Text generator (``make_texts``): each chunk has 40-80 words (``--words``) drawn i.i.d. from a
Zipf(1.0) distribution over a 200,000-word vocabulary: the dev corpus's words in order of
frequency (read from the basis file's ``chunks`` table), then pseudo-words for the tail; a
short title (8 words) and meta (5 words). Keyword questions are 6 distinct terms drawn from
the same distribution minus its 100 most frequent words (stop words, which the tokenizer
drops).

The keyword worker (the service's keyword search: in-memory BM25 in bm25s's layout,
``rag.index.embedded.bm25``; the SQLite FTS5 backend measured here before is gone) indexes
the N chunk texts, each as one document ``text title meta`` (as ``LexicalIndex`` concatenates
a chunk's text, title and metadata), tokenized by ``rag.text.tokens.Tokenizer`` into compact
token ids (``bm25.scoring.Postings``) and indexed by ``bm25.scoring.build_index`` (bm25s's
matrix layout, built with numpy; k1 1.2, b 0.75): tokenize and index time, index arrays size,
and the process's peak RSS (the build peak). It then times
``LexicalIndex.search(question, 100)`` (tokenize, scores, top-k), the question being the 6
terms separated by spaces (BM25 scores any matching term, like an OR); and the same with
``allowed`` = the chunk ids of a random 5% of the documents (13 chunks per document; a new
set per query), so the filter is timed too. Then a breakdown (p50 of the scoring, of the
``np.isin`` mask, of the top-k).

``--keyword-only`` (= ``--index`` with no spec) runs only the keyword (bm25s) part.

Files written under ``--workdir`` (default /tmp/scale) are deleted after measuring unless
``--keep-files``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from common import command, write_results

DIM = 384
K = 10
BLOCK = 50_000
TARGET_P50_MS = 50.0
TARGET_RSS_GIB = 4.0
TARGET_AT_N = 1_000_000
VOCAB = 200_000
STOP_HEAD = 100
QUERY_TERMS = 6
SWEEPS = {
    "flat": [0],
    "hnsw": [16, 24, 32, 48, 64, 96, 128, 192, 256, 384],
    "ivf": [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128],
}
PARAM_NAME = {"flat": "-", "hnsw": "efSearch", "ivf": "nprobe"}
STREAM_INDEX, STREAM_EVAL, STREAM_TUNE, STREAM_TEXT, STREAM_KEYWORDQ = 0, 1, 2, 3, 4
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ---------------------------------------------------------------- measurement helpers


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def pctl(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def file_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths if p.exists()) / 2**20


# ---------------------------------------------------------------- vector generator


def _rng(seed: int, stream: int, block: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, block])


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def load_basis(path: Path | None, seed: int) -> tuple[np.ndarray, str]:
    """Real MiniLM embeddings from an index's SQLite file, else a seeded low-rank gaussian."""
    if path is not None and path.exists():
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT vector FROM embeddings ORDER BY hash").fetchall()
        finally:
            db.close()
        basis = np.stack([np.frombuffer(v, dtype=np.float32) for (v,) in rows])
        if basis.shape[1] == DIM:
            return _normalise(basis), f"{path} ({len(basis)} vectors)"
    rng = _rng(seed, 99)
    low = rng.standard_normal((4096, 64)) @ rng.standard_normal((64, DIM))
    low += 0.1 * np.sqrt(64) * rng.standard_normal((4096, DIM))
    return _normalise(low), "synthetic (seeded rank-64 gaussian + noise, 4096 vectors)"


def make_vectors(basis: np.ndarray, n: int, rng: np.random.Generator, gen: dict) -> np.ndarray:
    """``n`` L2-normalised sparse mixtures of basis vectors plus gaussian noise."""
    pick = rng.integers(0, len(basis), (n, gen["mix"]))
    weights = rng.dirichlet([gen["alpha"]] * gen["mix"], n).astype(np.float32)
    x = np.einsum("nm,nmd->nd", weights, basis[pick])
    x += gen["noise"] * rng.standard_normal((n, DIM), dtype=np.float32)
    return _normalise(x)


def iter_blocks(basis: np.ndarray, n: int, gen: dict) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The N indexed vectors, deterministically, block by block: (ids, vectors)."""
    for b, start in enumerate(range(0, n, BLOCK)):
        size = min(BLOCK, n - start)
        ids = np.arange(start + 1, start + size + 1, dtype=np.int64)  # chunk ids start at 1
        yield ids, make_vectors(basis, size, _rng(gen["seed"], STREAM_INDEX, b), gen)


def queries(basis: np.ndarray, count: int, stream: int, gen: dict) -> np.ndarray:
    return make_vectors(basis, count, _rng(gen["seed"], stream), gen)


# ---------------------------------------------------------------- text generator


def load_vocab(path: Path | None, size: int) -> list[str]:
    """Dev-corpus words by frequency (when the basis file has chunks), then pseudo-words."""
    words: list[str] = []
    if path is not None and path.exists():
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            counts: Counter[str] = Counter()
            for (text,) in db.execute("SELECT text FROM chunks"):
                counts.update(w for w in text.lower().split() if w.isalpha())
            words = [w for w, _ in counts.most_common(size)]
        except sqlite3.Error:
            words = []
        finally:
            db.close()
    letters = "bcdfghjklmnpqrstvwxz"
    seen = set(words)
    i = 0
    while len(words) < size:
        w, j = "zq", i
        while True:
            w += letters[j % 20]
            j //= 20
            if j == 0:
                break
        if w not in seen:
            words.append(w)
        i += 1
    return words


def zipf_cdf(size: int, skip: int = 0) -> np.ndarray:
    p = 1.0 / np.arange(1, size + 1)
    p[:skip] = 0.0
    return np.cumsum(p) / p.sum()


def sample_words(cdf: np.ndarray, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(shape)), len(cdf) - 1)


def make_texts(vocab: np.ndarray, cdf: np.ndarray, rng: np.random.Generator, n: int,
               words: tuple[int, int]) -> list[tuple[str, str, str]]:
    """``n`` (text, title, meta) triples of Zipf-distributed words."""
    lengths = rng.integers(words[0], words[1] + 1, n)
    body = vocab[sample_words(cdf, rng, (n, words[1]))]
    title = vocab[sample_words(cdf, rng, (n, 8))]
    meta = vocab[sample_words(cdf, rng, (n, 5))]
    return [(" ".join(body[i, : lengths[i]]), " ".join(title[i]), " ".join(meta[i]))
            for i in range(n)]


def keyword_questions(vocab: np.ndarray, count: int, seed: int) -> list[str]:
    """Questions of QUERY_TERMS distinct content words, separated by spaces."""
    cdf = zipf_cdf(len(vocab), skip=STOP_HEAD)
    rng = _rng(seed, STREAM_KEYWORDQ)
    out = []
    for _ in range(count):
        terms: dict[str, None] = {}
        while len(terms) < QUERY_TERMS:
            terms[str(vocab[sample_words(cdf, rng, (1,))[0]])] = None
        out.append(" ".join(terms))
    return out


# ---------------------------------------------------------------- FAISS workers


def _faiss() -> Any:
    import faiss

    faiss.omp_set_num_threads(1)
    return faiss


def parse_spec(spec: str) -> dict:
    """``flat``, ``hnsw[:M[:efConstruction]]`` or ``ivf[:factor]`` (nlist = factor * sqrt(N))."""
    kind, *nums = spec.split(":")
    if kind == "flat" and not nums:
        return {"kind": kind}
    if kind == "hnsw" and len(nums) <= 2:
        m, efc = ([int(x) for x in nums] + [32, 100][len(nums):])[:2]
        return {"kind": kind, "m": m, "efc": efc}
    if kind == "ivf" and len(nums) <= 1:
        return {"kind": kind, "factor": float(nums[0]) if nums else 4.0}
    raise ValueError(f"bad index spec {spec!r}: flat, hnsw[:M[:efC]] or ivf[:factor]")


def new_index(spec: dict, n: int) -> Any:
    faiss = _faiss()
    if spec["kind"] == "flat":
        inner = faiss.IndexFlatIP(DIM)
    elif spec["kind"] == "hnsw":
        inner = faiss.IndexHNSWFlat(DIM, spec["m"], faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = spec["efc"]
    else:
        quantizer = faiss.IndexFlatIP(DIM)
        inner = faiss.IndexIVFFlat(quantizer, DIM, ivf_nlist(n, spec), faiss.METRIC_INNER_PRODUCT)
        inner.own_fields = True
        quantizer.this.disown()
    return faiss.IndexIDMap2(inner)


def ivf_nlist(n: int, spec: dict) -> int:
    return max(16, int(round(spec["factor"] * math.sqrt(n))))


def build_params(spec: dict, n: int) -> str:
    if spec["kind"] == "hnsw":
        return f"M={spec['m']} efC={spec['efc']}"
    if spec["kind"] == "ivf":
        return f"nlist={ivf_nlist(n, spec)}"
    return "exact"


def train_ivf(index: Any, basis: np.ndarray, n: int, gen: dict) -> float:
    """Train on the first vectors of the data stream (39-64 points per list, as faiss advises)."""
    inner = _faiss().downcast_index(index.index)
    want = min(n, 64 * inner.nlist)
    parts, got = [], 0
    for _, x in iter_blocks(basis, n, gen):
        parts.append(x[: want - got])
        got += len(parts[-1])
        if got >= want:
            break
    t0 = time.perf_counter()
    inner.train(np.concatenate(parts))
    return time.perf_counter() - t0


def api_probe(spec: dict) -> dict:
    """Do the calls ``VectorIndex`` makes work on this type: ``remove_ids`` (re-ingest) and a
    filtered search with a plain ``SearchParameters(sel=IDSelectorBatch)``?"""
    faiss = _faiss()
    index = new_index({**spec, "factor": 0.5}, 1024)
    x = _normalise(np.random.default_rng(0).standard_normal((1024, DIM)))
    if spec["kind"] == "ivf":
        faiss.downcast_index(index.index).train(x)
    index.add_with_ids(x, np.arange(1024, dtype=np.int64))
    out = {"remove_ids": True, "generic_filter": True}
    try:
        sel = faiss.IDSelectorBatch(np.arange(0, 1024, 2, dtype=np.int64))
        _, ids = index.search(x[:1], K, params=faiss.SearchParameters(sel=sel))
        out["generic_filter"] = bool(np.all(ids[0] % 2 == 0))
    except RuntimeError:
        out["generic_filter"] = False
    try:
        index.remove_ids(faiss.IDSelectorBatch(np.arange(10, dtype=np.int64)))
        out["remove_ids"] = index.ntotal == 1014
    except RuntimeError:
        out["remove_ids"] = False
    return out


def worker_build(task: dict) -> dict:
    gen, n, spec = task["gen"], task["n"], parse_spec(task["spec"])
    basis, _ = load_basis(Path(gen["basis"]) if gen["basis"] else None, gen["seed"])
    index = new_index(spec, n)
    rss_base = current_rss_mb()
    gen_s, add_s, train_s = 0.0, 0.0, 0.0
    if spec["kind"] == "ivf":
        train_s = train_ivf(index, basis, n, gen)
    t_gen = time.perf_counter()
    for ids, x in iter_blocks(basis, n, gen):
        t0 = time.perf_counter()
        gen_s += t0 - t_gen
        index.add_with_ids(x, ids)
        t_gen = time.perf_counter()
        add_s += t_gen - t0
    path = Path(task["path"])
    t0 = time.perf_counter()
    _faiss().write_index(index, str(path))
    write_s = time.perf_counter() - t0
    return {"build_s": train_s + add_s, "train_s": train_s, "add_s": add_s, "gen_s": gen_s,
            "write_s": write_s, "disk_mb": file_mb(path), "build_rss_mb": peak_rss_mb(),
            "rss_base_mb": rss_base, **api_probe(spec)}


def set_search_param(index: Any, kind: str, value: int) -> None:
    inner = _faiss().downcast_index(index.index)
    if kind == "hnsw":
        inner.hnsw.efSearch = value
    elif kind == "ivf":
        inner.nprobe = value


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / truth.shape[1]


def timed_search(index: Any, q: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Single-query searches, one at a time: per-query latency (ms) and the ids found."""
    for i in range(min(10, len(q))):  # warm-up
        index.search(q[i : i + 1], K)
    lat, found = [], []
    for i in range(len(q)):
        t0 = time.perf_counter()
        _, ids = index.search(q[i : i + 1], K)
        lat.append((time.perf_counter() - t0) * 1000)
        found.append(ids[0])
    return lat, np.stack(found)


def worker_serve(task: dict) -> dict:
    gen, target = task["gen"], task["opts"]["recall_target"]
    kind = parse_spec(task["spec"])["kind"]
    faiss = _faiss()
    truth = np.load(task["truth"])
    basis, _ = load_basis(Path(gen["basis"]) if gen["basis"] else None, gen["seed"])
    q_eval = queries(basis, task["recall_queries"], STREAM_EVAL, gen)
    q_tune = queries(basis, task["tune_queries"], STREAM_TUNE, gen)
    timed = task["queries"]
    del basis
    t0 = time.perf_counter()
    index = faiss.read_index(task["path"])
    load_s = time.perf_counter() - t0
    loaded_rss = current_rss_mb()
    sweep, chosen = [], None
    for value in SWEEPS[kind]:
        set_search_param(index, kind, value)
        tune_recall = recall_at_k(index.search(q_tune, K)[1], truth["tune"])
        lat, ids = timed_search(index, q_eval[:timed])
        row = {"param": value, "tune_recall": tune_recall,
               "recall": recall_at_k(index.search(q_eval, K)[1], truth["eval"]),
               "timed_recall": recall_at_k(ids, truth["eval"][:timed]), "p50_ms": pctl(lat, 50),
               "p99_ms": pctl(lat, 99), "mean_ms": float(np.mean(lat))}
        sweep.append(row)
        if chosen is None and tune_recall >= target:
            chosen = row
        if chosen is not None and value >= 2 * chosen["param"] and tune_recall >= 0.99:
            break  # enough of the curve past the chosen point
    chosen = chosen or sweep[-1]
    return {"load_s": load_s, "loaded_rss_mb": loaded_rss, "serve_rss_mb": peak_rss_mb(),
            "chosen": chosen, "sweep": sweep}


def worker_truth(task: dict) -> dict:
    """Exact top-k ids (numpy brute force) for the eval and tuning queries."""
    gen, n = task["gen"], task["n"]
    basis, label = load_basis(Path(gen["basis"]) if gen["basis"] else None, gen["seed"])
    qs = {"eval": queries(basis, task["recall_queries"], STREAM_EVAL, gen),
          "tune": queries(basis, task["tune_queries"], STREAM_TUNE, gen)}
    best = {name: (np.full((len(q), K), -np.inf, np.float32), np.zeros((len(q), K), np.int64))
            for name, q in qs.items()}
    nn_sims = []
    for ids, x in iter_blocks(basis, n, gen):
        for name, q in qs.items():
            scores = np.concatenate([best[name][0], q @ x.T], axis=1)
            cand = np.concatenate([best[name][1], np.broadcast_to(ids, (len(q), len(ids)))], axis=1)
            top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
            best[name] = (np.take_along_axis(scores, top, 1), np.take_along_axis(cand, top, 1))
    for name in qs:
        nn_sims.append(np.sort(best[name][0], axis=1)[:, ::-1])
    np.savez(task["path"], eval=best["eval"][1], tune=best["tune"][1])
    sims = np.concatenate(nn_sims)
    return {"basis": label, "q_top1_cos": float(np.median(sims[:, 0])),
            "q_top10_cos": float(np.median(sims[:, K - 1]))}


# ---------------------------------------------------------------- keyword (bm25s) worker


FILTER_FRACTION = 0.05
CHUNKS_PER_DOC = 13  # chunk id i belongs to document i // 13


def allowed_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """Chunk ids (sorted int64) of a random ``FILTER_FRACTION`` of the documents."""
    docs = np.arange(1, n + 1, dtype=np.int64) // CHUNKS_PER_DOC
    keep = rng.random(int(docs[-1]) + 1) < FILTER_FRACTION
    return np.flatnonzero(keep[docs]).astype(np.int64) + 1


def worker_bm25s(task: dict) -> dict:
    import bm25s

    from rag.index.embedded.bm25.index import LexicalIndex
    from rag.index.embedded.bm25.scoring import Postings, Stats, accumulate, build_index
    from rag.text.tokens import Tokenizer

    n, gen = task["n"], task["gen"]
    vocab = np.array(load_vocab(Path(gen["basis"]) if gen["basis"] else None, VOCAB), dtype=object)
    questions = keyword_questions(vocab, task["queries"], gen["seed"])
    cdf = zipf_cdf(len(vocab))
    words = tuple(task["opts"]["words"])
    tokenize = Tokenizer()
    rss_base = current_rss_mb()
    tokens = Postings()  # compact token ids, as LexicalIndex collects them
    gen_s, tok_s, block = 0.0, 0.0, 20_000
    for b, start in enumerate(range(0, n, block)):
        t0 = time.perf_counter()
        texts = make_texts(vocab, cdf, _rng(gen["seed"], STREAM_TEXT, b), min(block, n - start),
                           words)
        t1 = time.perf_counter()
        for text, title, meta in texts:
            tokens.add(tokenize(f"{text} {title} {meta}"))
        tok_s += time.perf_counter() - t1
        gen_s += t1 - t0
    del texts
    n_tokens = int(tokens.lengths.sum())
    tokens_rss = current_rss_mb()
    log(f"  bm25s N={n:,}: tokenized {n_tokens:,} tokens in {tok_s:.1f}s; indexing")
    t0 = time.perf_counter()
    bm = build_index(tokens)
    index_s = time.perf_counter() - t0
    del tokens
    build_rss = peak_rss_mb()
    sc = bm.scores
    index_mb = sum(sc[k].nbytes for k in ("data", "indices", "indptr")) / 2**20
    # LexicalIndex with only what search() reads (its __init__ reads a store)
    lex = LexicalIndex.__new__(LexicalIndex)
    lex.tokenize, lex._chunks, lex._filter_cache = tokenize, bm, {}
    lex.stats = (Stats.of(bm, n_tokens / n), Stats.of(None, 1.0))  # common terms: chunks
    lex._score_cache, lex._score_lock = OrderedDict(), threading.Lock()
    lex.chunk_ids = np.arange(1, n + 1, dtype=np.int64)
    lex.chunk_doc = np.arange(n, dtype=np.int64)
    lex._order = np.arange(n)  # ids already sorted, as LexicalIndex.__init__ would find
    lex._sorted_ids = lex.chunk_ids
    served_rss = current_rss_mb()
    rng = _rng(gen["seed"], 78)
    masks = [allowed_ids(n, rng) for _ in questions]
    for q in questions[:5]:
        lex.search(q, 100)
    runs: dict[str, dict] = {}
    for name, allow in (("all", [None] * len(questions)), ("filtered", masks)):
        lat, hits = [], []
        for q, a in zip(questions, allow, strict=True):
            t0 = time.perf_counter()
            found = lex.search(q, 100, a)
            lat.append((time.perf_counter() - t0) * 1000)
            hits.append(len(found))
        runs[name] = {"p50_ms": pctl(lat, 50), "p99_ms": pctl(lat, 99),
                      "mean_hits": float(np.mean(hits))}
    parts: dict[str, list[float]] = {"tokenize": [], "score": [], "mask": [], "top": []}
    matched = []
    for q, a in zip(questions, masks, strict=True):
        t0 = time.perf_counter()
        toks = tokenize(q)
        t1 = time.perf_counter()
        scores = accumulate(bm, toks)
        t2 = time.perf_counter()
        masked = np.where(np.isin(lex.chunk_ids, a), scores, 0.0)
        t3 = time.perf_counter()
        LexicalIndex._top(scores, 100)
        t4 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[key].append(dt * 1000)
        matched.append(int(np.count_nonzero(scores > 0)))
        del masked
    return {"tokenize_s": tok_s, "index_s": index_s, "build_s": tok_s + index_s, "gen_s": gen_s,
            "tokens": n_tokens, "vocab": len(bm.vocab_dict), "nnz": int(len(sc["data"])),
            "index_mb": index_mb, "rss_base_mb": rss_base, "tokens_rss_mb": tokens_rss,
            "build_rss_mb": build_rss, "served_rss_mb": served_rss, "rss_mb": peak_rss_mb(),
            "search": runs["all"], "search_filtered": runs["filtered"],
            "parts_p50_ms": {k: pctl(v, 50) for k, v in parts.items()},
            "matched_mean": float(np.mean(matched)),
            "allowed_mean": float(np.mean([len(a) for a in masks])),
            "example_query": questions[0], "bm25s": bm25s.__version__, "words": list(words)}


WORKERS = {"build": worker_build, "serve": worker_serve, "truth": worker_truth,
           "bm25s": worker_bm25s}


# ---------------------------------------------------------------- orchestration


def run_worker(task: dict) -> dict:
    env = {**os.environ, **THREAD_ENV}
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)], env=env,
                          stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {task['job']} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_size(n: int, args: argparse.Namespace, gen: dict, opts: dict) -> dict:
    work: Path = args.workdir
    base = {"n": n, "gen": gen, "opts": opts, "queries": args.queries,
            "recall_queries": args.recall_queries, "tune_queries": args.tune_queries}
    truth_path = work / f"truth_{n}.npz"
    out: dict[str, Any] = {"n": n, "truth": {}, "vectors": {}}
    if args.index:
        log(f"N={n:,}: exact top-{K} for {args.recall_queries} + {args.tune_queries} queries")
        out["truth"] = run_worker({**base, "job": "truth", "path": str(truth_path)})
    if not args.no_bm25s:
        log(f"N={n:,}: keyword (bm25s)")
        out["bm25s"] = run_worker({**base, "job": "bm25s"})
        b = out["bm25s"]
        log(f"N={n:,}: bm25s built in {b['build_s']:.1f}s, peak RSS {b['rss_mb']:.0f} MB, "
            f"p50 {b['search']['p50_ms']:.1f} ms")
    for name in args.index:
        spec = parse_spec(name)
        path = work / f"{name.replace(':', '_')}_{n}.faiss"
        log(f"N={n:,}: build {name} ({build_params(spec, n)})")
        built = run_worker({**base, "job": "build", "spec": name, "path": str(path)})
        log(f"N={n:,}: built {name} in {built['build_s']:.1f}s; serving")
        served = run_worker({**base, "job": "serve", "spec": name, "path": str(path),
                             "truth": str(truth_path)})
        out["vectors"][name] = {"kind": spec["kind"], "params": build_params(spec, n),
                                **built, **served}
        if not args.keep_files:
            path.unlink(missing_ok=True)
    if not args.keep_files:
        truth_path.unlink(missing_ok=True)
    return out


# ---------------------------------------------------------------- report


def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}x" if b else "-"


def checks(n: int, kind: str, r: dict, target: float) -> list[str]:
    rss_gib = max(r["build_rss_mb"], r["serve_rss_mb"]) / 1024
    marks = [f"p50 {'PASS' if r['chosen']['p50_ms'] <= TARGET_P50_MS else 'FAIL'}",
             f"RSS {'PASS' if rss_gib <= TARGET_RSS_GIB else 'FAIL'}"]
    if kind != "flat":
        unmet = "*" if r["chosen"]["tune_recall"] < target else ""
        marks.append(f"recall {'PASS' if r['chosen']['recall'] >= target else 'FAIL'}{unmet}")
    return marks


def vector_table(results: list[dict], target: float) -> list[str]:
    head = (f"{'N':>9} {'index':<5} {'params':<22} {'build s':>8} {'disk MB':>8} "
            f"{'bRSS MB':>8} {'sRSS MB':>8} {'load s':>7} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'R@10':>6} {'p50/flat':>8} {'RSS/flat':>8} {'bld/flat':>8}  checks")
    lines = [head, "-" * len(head)]
    for res in results:
        flat = res["vectors"].get("flat")
        for r in res["vectors"].values():
            kind, c = r["kind"], r["chosen"]
            params = r["params"] + (f" {PARAM_NAME[kind]}={c['param']}" if kind != "flat" else "")
            params = params.replace("efSearch", "efS")
            lines.append(
                f"{res['n']:>9,} {kind:<5} {params:<22} {r['build_s']:>8.1f} {r['disk_mb']:>8.0f} "
                f"{r['build_rss_mb']:>8.0f} {r['serve_rss_mb']:>8.0f} {r['load_s']:>7.2f} "
                f"{c['p50_ms']:>7.2f} {c['p99_ms']:>7.2f} {c['recall']:>6.3f} "
                f"{_ratio(c['p50_ms'], flat and flat['chosen']['p50_ms']):>8} "
                f"{_ratio(r['serve_rss_mb'], flat and flat['serve_rss_mb']):>8} "
                f"{_ratio(r['build_s'], flat and flat['build_s']):>8}  "
                + ", ".join(checks(res["n"], kind, r, target)))
    return lines


def sweep_lines(results: list[dict]) -> list[str]:
    lines = ["", "Sweeps (param: recall@10 held-out / tuning, p50 ms):"]
    for res in results:
        for r in res["vectors"].values():
            kind = r["kind"]
            if kind == "flat":
                continue
            pts = "  ".join(f"{s['param']}: {s['recall']:.3f}/{s['tune_recall']:.3f} "
                            f"{s['p50_ms']:.2f}" for s in r["sweep"])
            lines.append(f"  N={res['n']:,} {kind} {r['params']} {PARAM_NAME[kind]}  {pts}")
    return lines


def bm25s_table(results: list[dict]) -> list[str]:
    rows = [r for r in results if "bm25s" in r]
    if not rows:
        return []
    b0 = rows[0]["bm25s"]
    head = (f"{'N':>9} {'tok s':>6} {'index s':>7} {'tokens':>11} {'vocab':>7} {'idx MB':>7} "
            f"{'tokRSS':>7} {'peakRSS':>7} {'srvRSS':>7} {'p50':>6} {'p99':>6} {'f p50':>6} "
            f"{'f p99':>6} {'score':>6} {'isin':>6} {'top':>6} {'match':>7} {'hits':>4} "
            f"{'f hits':>6}")
    lines = ["", f"keyword: bm25s {b0['bm25s']} layout (rag.index.embedded.bm25: Tokenizer + "
             f"BM25 k1 1.2 b 0.75; LexicalIndex.search top 100, {QUERY_TERMS} terms; f = "
             "filtered to "
             f"{FILTER_FRACTION:.0%} of the documents; RSS in MB, times in ms; score/isin/top: "
             "p50 of each step; match: chunks with a positive score; hits: mean results):",
             head, "-" * len(head)]
    for r in rows:
        b, pt = r["bm25s"], r["bm25s"]["parts_p50_ms"]
        lines.append(
            f"{r['n']:>9,} {b['tokenize_s']:>6.1f} {b['index_s']:>7.1f} {b['tokens']:>11,} "
            f"{b['vocab']:>7,} {b['index_mb']:>7.0f} {b['tokens_rss_mb']:>7.0f} "
            f"{b['build_rss_mb']:>7.0f} {b['served_rss_mb']:>7.0f} "
            f"{b['search']['p50_ms']:>6.2f} {b['search']['p99_ms']:>6.2f} "
            f"{b['search_filtered']['p50_ms']:>6.2f} {b['search_filtered']['p99_ms']:>6.2f} "
            f"{pt['score']:>6.2f} {pt['mask']:>6.2f} {pt['top']:>6.2f} {b['matched_mean']:>7,.0f} "
            f"{b['search']['mean_hits']:>4.0f} {b['search_filtered']['mean_hits']:>6.0f}")
    return lines


def summary_lines(results: list[dict], target: float) -> list[str]:
    lines = ["", f"Targets at N={TARGET_AT_N:,}: p50 <= {TARGET_P50_MS:g} ms, peak RSS <= "
             f"{TARGET_RSS_GIB:g} GiB (max of build and serve), approximate recall@10 >= {target}"]
    for res in results:
        flat = res["vectors"].get("flat")
        if flat:
            per_n = flat["chosen"]["p50_ms"] / res["n"]
            lines.append(f"  flat at N={res['n']:,}: p50 {flat['chosen']['p50_ms']:.1f} ms -> "
                         f"linear estimate of the largest N with p50 <= {TARGET_P50_MS:g} ms: "
                         f"{TARGET_P50_MS / per_n:,.0f}")
        if res["n"] == TARGET_AT_N:
            for r in res["vectors"].values():
                marks = ", ".join(checks(res["n"], r["kind"], r, target))
                lines.append(f"  N={res['n']:,} {r['kind']} {r['params']}: {marks}")
        if "bm25s" in res:
            b = res["bm25s"]
            p50, fp50, rss = (b["search"]["p50_ms"], b["search_filtered"]["p50_ms"],
                              b["rss_mb"] / 1024)
            lines.append(
                f"  N={res['n']:,} keyword (bm25s) p50 {p50:.1f} ms / filtered {fp50:.1f} ms: "
                f"{'PASS' if max(p50, fp50) <= TARGET_P50_MS else 'FAIL'}; peak RSS "
                f"{rss:.2f} GiB: {'PASS' if rss <= TARGET_RSS_GIB else 'FAIL'}")
    vecs = [r for res in results for r in res["vectors"].values()]
    if any(r["kind"] != "flat" and r["chosen"]["tune_recall"] < target for r in vecs):
        lines.append(f"  * the sweep ended before the tuning queries reached recall {target}; "
                     "the last value is reported")
    for key, what in (("remove_ids", "remove_ids (VectorIndex.remove)"),
                      ("generic_filter", "filters via plain SearchParameters(sel=...) "
                       "(VectorIndex.search)")):
        kinds = sorted({r["kind"] for r in vecs if r.get(key) is False})
        if kinds:
            lines.append(f"  {', '.join(kinds)}: {what} fails")
    return lines


def ratios(results: list[dict]) -> dict[str, float]:
    """Same-run ratios: each FAISS index against flat at the same N, the filtered keyword
    search against the unfiltered one, and each layer's p50 at the largest N against the
    smallest."""
    out: dict[str, float] = {}

    def put(key: str, a: float | None, b: float | None) -> None:
        if a is not None and b:
            out[key] = a / b

    for res in results:
        n, flat = res["n"], res["vectors"].get("flat")
        for name, r in res["vectors"].items():
            if flat and name != "flat":
                put(f"{name}_p50_vs_flat_n{n}", r["chosen"]["p50_ms"], flat["chosen"]["p50_ms"])
                put(f"{name}_serve_rss_vs_flat_n{n}", r["serve_rss_mb"], flat["serve_rss_mb"])
                put(f"{name}_build_s_vs_flat_n{n}", r["build_s"], flat["build_s"])
        if "bm25s" in res:
            b = res["bm25s"]
            put(f"bm25s_filtered_p50_vs_unfiltered_n{n}", b["search_filtered"]["p50_ms"],
                b["search"]["p50_ms"])
    if len(results) > 1:
        small, large = min(results, key=lambda r: r["n"]), max(results, key=lambda r: r["n"])
        span = f"n{large['n']}_vs_n{small['n']}"
        if "bm25s" in small and "bm25s" in large:
            put(f"bm25s_p50_{span}", large["bm25s"]["search"]["p50_ms"],
                small["bm25s"]["search"]["p50_ms"])
        for name, r in large["vectors"].items():
            if name in small["vectors"]:
                put(f"{name}_p50_{span}", r["chosen"]["p50_ms"],
                    small["vectors"][name]["chosen"]["p50_ms"])
    return out


def report(results: list[dict], meta: dict, target: float) -> str:
    t = next((r["truth"] for r in results if r["truth"]), {})
    g = meta["gen"]
    lines = [f"bench_scale: dim {DIM}, k {K}; {meta['queries']} timed queries, recall over "
             f"{meta['recall_queries']} held-out queries, parameters chosen on "
             f"{meta['tune_queries']} others; 1 thread per process",
             f"basis: {t.get('basis', '- (no vector run)')}; generator mix={g['mix']} "
             f"alpha={g['alpha']} noise={g['noise']} seed={g['seed']}",
             "bRSS/sRSS: peak RSS of the build / serve (read_index + search) process; "
             "p50/p99: single-query search", ""]
    if any(r["vectors"] for r in results):
        lines += vector_table(results, target)
        lines += sweep_lines(results)
    lines += bm25s_table(results)
    lines += summary_lines(results, target)
    for r in results:
        if r["truth"]:
            lines.append(f"  N={r['n']:,}: median query cosine to exact top-1 / top-10: "
                         f"{r['truth']['q_top1_cos']:.3f} / {r['truth']['q_top10_cos']:.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI


def add_generator_args(ap: argparse.ArgumentParser) -> None:
    """The vector generator's knobs (``make_vectors``) and the seed of every stream."""
    ap.add_argument("--mix", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--quick", action="store_true", help="smoke run: --sizes 20000")
    ap.add_argument("--index", nargs="*", default=["flat", "hnsw:32:100", "ivf:4"],
                    help="index specs: flat, hnsw[:M[:efConstruction]], ivf[:factor] "
                    "(nlist = factor * sqrt(N)); none: keyword layer only; default: %(default)s")
    ap.add_argument("--queries", type=int, default=200,
                    help="queries timed one at a time (vector and BM25)")
    ap.add_argument("--recall-queries", type=int, default=1000,
                    help="held-out queries for the reported recall@10 (includes the timed ones)")
    ap.add_argument("--tune-queries", type=int, default=1000,
                    help="other queries, which choose efSearch / nprobe")
    ap.add_argument("--basis", type=Path, default=Path("/tmp/dev/rag.sqlite3"),
                    help="rag.sqlite3 whose embeddings table is the basis (and chunks the vocab)")
    add_generator_args(ap)
    ap.add_argument("--recall-target", type=float, default=0.95)
    ap.add_argument("--words", type=int, nargs=2, default=[40, 80], metavar=("MIN", "MAX"))
    ap.add_argument("--no-bm25s", action="store_true", help="skip the keyword (bm25s) part")
    ap.add_argument("--keyword-only", action="store_true",
                    help="no FAISS index (same as --index with no spec): the keyword part only")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/scale"))
    ap.add_argument("--keep-files", action="store_true")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--report", type=Path, metavar="JSON",
                    help="print the report of a saved --json run; measure nothing")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes = [20_000]
    if args.keyword_only:
        args.index = []
    args.recall_queries = max(args.recall_queries, args.queries)
    for spec in args.index:
        try:
            parse_spec(spec)
        except ValueError as e:
            ap.error(str(e))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        task = json.loads(args.worker)
        print(json.dumps(WORKERS[task["job"]](task)))
        return
    if args.report:
        saved = json.loads(args.report.read_text())
        saved = saved.get("figures", saved)  # a results file or a --json file
        print(report(saved["results"], saved["meta"], saved["meta"]["opts"]["recall_target"]))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    gen = {"basis": str(args.basis) if args.basis else "", "mix": args.mix, "alpha": args.alpha,
           "noise": args.noise, "seed": args.seed}
    opts = {"recall_target": args.recall_target, "words": args.words}
    t0 = time.perf_counter()
    results = [bench_size(n, args, gen, opts) for n in args.sizes]
    meta = {"gen": gen, "opts": opts, "queries": args.queries,
            "recall_queries": args.recall_queries, "tune_queries": args.tune_queries,
            "sizes": args.sizes, "index": args.index, "wall_s": time.perf_counter() - t0,
            "faiss": _faiss().__version__, "sqlite": sqlite3.sqlite_version}
    print(report(results, meta, args.recall_target))
    figures = {"meta": meta, "results": results, "ratios": ratios(results)}
    run = {"sizes": args.sizes, "index": args.index, "keyword": not args.no_bm25s,
           "queries": args.queries, "recall_queries": args.recall_queries,
           "tune_queries": args.tune_queries, "recall_target": args.recall_target,
           "basis": str(args.basis), "basis_found": bool(args.basis and args.basis.exists()),
           "words": args.words,
           "generator": {k: v for k, v in gen.items() if k != "basis"},
           "threads_per_process": 1}
    log(f"results: {write_results('bench_scale', figures, run, command())}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    log(f"done in {meta['wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
