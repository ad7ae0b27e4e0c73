"""Whole-service scale benchmark: rag's own store and read path at N synthetic chunks.

    # 100k chunks: ~3 minutes here (build 45 s, then a cold start and a restart)
    .venv/bin/python benchmarks/bench_service_scale.py --chunks 100000 \
        --basis /tmp/dev/rag.sqlite3
    # 1M chunks: ~20 minutes (build ~10, cold start ~6), 8.5 GB under --workdir; --keep reuses
    # the built store on the next run
    .venv/bin/python benchmarks/bench_service_scale.py --chunks 1000000 --keep \
        --basis /tmp/dev/rag.sqlite3

The basis is a dev index (``rag ingest eval/data/multihop-rag-dev/corpus.json --index
/tmp/dev``). Each run writes benchmarks/results/bench_service_scale.json
(benchmarks/common.py: settings, machine and commit beside the figures and their same-run
ratios: restart against cold start, the real questions against the synthetic ones, cached
embeddings and the first question after a write against the plain p50); ``--json`` also
writes the figures alone.

``benchmarks/bench_scale.py`` measures each layer alone (FAISS, the keyword index over chunk
text); this script measures what ``rag serve`` holds and does at that size, with every layer
at once.

*Build* (a subprocess): ``Store.open(create=True)`` with the default settings' parameters, then
synthetic articles written through ``Store.write`` in batches of ``--batch`` articles, as
``rag ingest`` writes them (documents, chunks, sentences, stored embeddings), and
``Store.save_vectors()`` (an IVF index from 500k vectors, as ``rag ingest`` saves it). The
model is not run: each chunk's vector comes from ``bench_scale.py``'s generator (sparse
mixtures of real MiniLM chunk embeddings from ``--basis``, plus noise). Reported: time, peak
RSS, bytes on disk.

Articles imitate the dev corpus (375 articles: 12 chunks, ~97 sentences, ~10,300 characters
an article; 41 publishers): ``--chunks-per-article`` (12) chunks of ``--sentences`` (8)
sentences of 12-24 words, consecutive chunks sharing one sentence (the overlap), words drawn
from a Zipf distribution over the dev corpus's vocabulary (``bench_scale.load_vocab``); title
8 words; publisher drawn with the dev corpus's publisher frequencies; an author from 2,000;
a date in September-December 2023.

*Serve* (another subprocess, nothing shared but the files), twice: a cold start (saved
keyword bases removed first) and a restart. ``Service.open(serving=True)`` as ``rag serve``
opens it, the same warm-up question (which loads the FAISS file and builds the in-memory BM25
index of chunks and sentences, or on the restart maps the base the cold start saved and
catches up with its write), waiting for a built base to be saved (in the back, as the
server does), ``gc.freeze``; then ``Service.ask(k=10,
hybrid, answer on)`` over ``--questions`` synthetic questions, the real model embedding them
(one thread, as the server). A third of the questions name no publisher, a third one, a third
two (so the filtered searches of the hints run, as for MultiHop-RAG's questions): 8-14 content
words each; then the first ``--questions`` MultiHop-RAG dev questions (``--real``), which
are longer (~27 keyword terms) and name dates too (first seen here, so each new date's filter
is looked up in SQLite as in a fresh server). Reported: time to ready, RSS after warm-up and
peak, p50/p99 per question of each set, and what a write costs at that size: one new article
through ``Store.write`` + ``save_vectors``, then the next new question (which catches the
keyword index up with a segment, rag/index/embedded/bm25/segments.py; before segments it
rebuilt the whole index) and the one after; then ``--writes`` more articles, each followed by
a question asked before (embedding and filters known, so what is timed is what the write
left to catch up: segment, deletion masks, filter answers).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import (  # noqa: E402
    STOP_HEAD,
    _rng,
    add_generator_args,
    current_rss_mb,
    load_basis,
    load_vocab,
    log,
    make_vectors,
    pctl,
    peak_rss_mb,
    sample_words,
    zipf_cdf,
)
from common import DEV, command, write_results  # noqa: E402

VOCAB = 200_000
STREAM_ARTICLES, STREAM_VECTORS, STREAM_QUESTIONS = 10, 11, 12
AUTHORS = 2_000


def publishers(basis: Path) -> tuple[list[str], np.ndarray]:
    """The dev corpus's publishers and their frequencies (a few stand-ins without it)."""
    import sqlite3

    if basis.exists():
        db = sqlite3.connect(f"file:{basis}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT source, count(*) FROM documents GROUP BY source "
                              "ORDER BY source").fetchall()
        finally:
            db.close()
        if rows:
            counts = np.array([c for _, c in rows], dtype=np.float64)
            return [s for s, _ in rows], counts / counts.sum()
    names = ["TechCrunch", "The Verge", "Sporting News", "Polygon", "The Guardian"]
    return names, np.full(len(names), 1 / len(names))


class Articles:
    """Deterministic synthetic articles: (Article, chunks) by index."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        vocab = load_vocab(args.basis, VOCAB)
        self.vocab = vocab
        self.cdf = zipf_cdf(len(vocab))
        self.sources, self.source_p = publishers(args.basis)
        self.authors = [" ".join(w.capitalize() for w in vocab[5_000 + 2 * i: 5_002 + 2 * i])
                        for i in range(AUTHORS)]

    def make(self, i: int):
        from rag.core.documents import Article, Chunk

        a = self.args
        rng = _rng(a.seed, STREAM_ARTICLES, i)
        n_sent = a.chunks_per_article * (a.sentences - 1) + 1
        lengths = rng.integers(12, 25, n_sent)
        words = sample_words(self.cdf, rng, (int(lengths.sum()),)).tolist()
        vocab = self.vocab
        sentences, at = [], 0
        for n in lengths.tolist():
            text = " ".join(vocab[w] for w in words[at: at + n])
            sentences.append(text[:1].upper() + text[1:] + ".")
            at += n
        starts, pos = [], 0
        for s in sentences:
            starts.append(pos)
            pos += len(s) + 1
        body = " ".join(sentences)
        chunks = []
        for c in range(a.chunks_per_article):
            first, last = c * (a.sentences - 1), c * (a.sentences - 1) + a.sentences - 1
            start, end = starts[first], starts[last] + len(sentences[last])
            text = body[start:end]
            chunks.append(Chunk(ordinal=c, char_start=start, char_end=end, text=text,
                                n_tokens=len(text.split())))
        title = " ".join(vocab[w] for w in sample_words(self.cdf, rng, (8,)).tolist())
        source = self.sources[int(rng.choice(len(self.sources), p=self.source_p))]
        day = date(2023, 9, 1) + timedelta(days=int(rng.integers(0, 122)))
        article = Article(url=f"https://synthetic.example/{i}", title=title.capitalize(),
                          body=body, author=self.authors[int(rng.integers(0, AUTHORS))],
                          published_date=day, source=source)
        return article, chunks


def rss_parts_mb() -> dict[str, float]:
    """Anonymous (the heap, numpy arrays) and file-backed (memory-mapped files: saved keyword
    bases, shared and reclaimable) resident memory of this process."""
    parts = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                parts[key] = int(value.split()[0]) / 1024
    return parts


def index_params(settings):
    from rag.embedding import make_embedder
    from rag.index.base import IndexParams

    name = make_embedder(settings.model, runtime=settings.runtime).name
    return IndexParams(model=name, dim=384, chunk_tokens=settings.chunk_tokens,
                       chunk_overlap=settings.chunk_overlap)


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def worker_build(args: argparse.Namespace) -> dict:
    from rag.core.config import Settings
    from rag.index.base import DocumentWrite
    from rag.index.embedded.store import Store
    from rag.index.embedded.vectors import set_threads

    set_threads(1)
    settings = Settings(index_dir=args.workdir)
    store = Store.open(args.workdir, index_params(settings), create=True)
    gen_opts = {"mix": args.mix, "alpha": args.alpha, "noise": args.noise, "seed": args.seed}
    basis, _ = load_basis(args.basis, args.seed)
    articles = Articles(args)
    n_articles = -(-args.chunks // args.chunks_per_article)
    t0 = time.perf_counter()
    made = written = 0.0
    for b, first in enumerate(range(0, n_articles, args.batch)):
        t = time.perf_counter()
        docs, embeddings = [], {}
        batch = [articles.make(i) for i in range(first, min(first + args.batch, n_articles))]
        vectors = make_vectors(basis, sum(len(c) for _, c in batch),
                               _rng(args.seed, STREAM_VECTORS, b), gen_opts)
        v = 0
        for article, chunks in batch:
            hashes = []
            for c in chunks:
                h = f"syn-{article.url}-{c.ordinal}"
                embeddings[h] = vectors[v]
                hashes.append(h)
                v += 1
            docs.append(DocumentWrite(article, chunks, hashes))
        t1 = time.perf_counter()
        store.write(docs, embeddings)
        made += t1 - t
        written += time.perf_counter() - t1
        if b % 20 == 0:
            log(f"build: {first + len(batch):,}/{n_articles:,} articles, "
                f"{time.perf_counter() - t0:.0f} s, RSS {current_rss_mb():.0f} MB")
    t1 = time.perf_counter()
    store.save_vectors()
    t_vectors = time.perf_counter() - t1
    counts = store.counts()
    with store._read() as db:
        counts["sentences"] = db.execute("SELECT count(*) FROM sentences").fetchone()[0]
    kind, _ = store.vectors()
    store.close()
    return {"articles": n_articles, "counts": counts, "vector_index": kind.kind,
            "generate_s": made, "write_s": written, "save_vectors_s": t_vectors,
            "store_s": written + t_vectors, "disk_mb": dir_mb(args.workdir),
            "peak_rss_mb": peak_rss_mb()}


def make_questions(args: argparse.Namespace, sources: list[str]) -> list[str]:
    vocab = load_vocab(args.basis, VOCAB)
    cdf = zipf_cdf(len(vocab), skip=STOP_HEAD)
    rng = _rng(args.seed, STREAM_QUESTIONS)
    out = []
    for i in range(args.questions + 2):
        words = [vocab[w] for w in sample_words(cdf, rng, (int(rng.integers(8, 15)),)).tolist()]
        named = [sources[j] for j in rng.choice(len(sources), i % 3, replace=False)]
        half = len(words) // 2
        if len(named) == 0:
            q = f"What happened with {' '.join(words)}?"
        elif len(named) == 1:
            q = f"According to {named[0]}, what about {' '.join(words)}?"
        else:
            q = (f"Does the {named[0]} article about {' '.join(words[:half])} agree with the "
                 f"{named[1]} article about {' '.join(words[half:])}?")
        out.append(q)
    return out


def worker_serve(args: argparse.Namespace) -> dict:
    from rag.core.config import Settings
    from rag.core.documents import Article, Chunk  # noqa: F401 - imported before timing
    from rag.index.base import DocumentWrite
    from rag.service import Service

    settings = Settings(index_dir=args.workdir)
    rss_before = current_rss_mb()
    t0 = time.perf_counter()
    service = Service.open(settings, serving=True)
    t_open = time.perf_counter() - t0
    files = service.index._lexical.files
    saved_before = files.generations()
    service.ask("warm up", k=1)
    t_ready = time.perf_counter() - t0
    view = service.index.lexical()
    t_saved = time.perf_counter()
    while view.base_generation not in files.generations() and time.perf_counter() - t_saved < 900:
        time.sleep(0.2)  # a built base is saved in the back: not while questions are timed
    t_saved = time.perf_counter() - t_saved
    gc.collect()
    gc.freeze()
    rss_ready, parts_ready = current_rss_mb(), rss_parts_mb()
    questions = make_questions(args, service.index.sources())
    questions, fresh = questions[:-2], questions[-2:]  # two new ones for after the write
    times = []
    for q in questions:
        t = time.perf_counter()
        service.ask(q, k=10)
        times.append((time.perf_counter() - t) * 1000)
    repeat = []
    for q in questions[:50]:  # embeddings cached: the model's share removed
        t = time.perf_counter()
        service.ask(q, k=10)
        repeat.append((time.perf_counter() - t) * 1000)
    real = []  # MultiHop-RAG's own questions: ~27 keyword terms, publishers and dates named
    if args.real:
        from rag.evaluation.evaluate import load_gold

        for g in load_gold(args.real)[: args.questions]:
            t = time.perf_counter()
            service.ask(g.question, k=10)
            real.append((time.perf_counter() - t) * 1000)
    # one write at this size, then the next questions
    article, chunks = Articles(args).make(10**9)
    basis, _ = load_basis(args.basis, args.seed)
    vecs = make_vectors(basis, len(chunks), _rng(args.seed, STREAM_VECTORS, 10**6),
                        {"mix": args.mix, "alpha": args.alpha, "noise": args.noise})
    hashes = [f"syn-new-{c.ordinal}" for c in chunks]
    t = time.perf_counter()
    service.index.write([DocumentWrite(article, chunks, hashes)], dict(zip(hashes, vecs,
                                                                           strict=True)))
    t_write = time.perf_counter() - t
    t = time.perf_counter()
    service.index.save_vectors()
    t_save = time.perf_counter() - t
    after = []
    for q in fresh:
        t = time.perf_counter()
        service.ask(q, k=10)
        after.append((time.perf_counter() - t) * 1000)
    # more writes, each followed by a question asked before (its embedding and filters known):
    # what a write costs the next question, the model's share removed
    repeated_after = []
    for i in range(1, args.writes + 1):
        article, chunks = Articles(args).make(10**9 + i)
        vecs = make_vectors(basis, len(chunks), _rng(args.seed, STREAM_VECTORS, 10**6 + i),
                            {"mix": args.mix, "alpha": args.alpha, "noise": args.noise})
        hashes = [f"syn-new-{i}-{c.ordinal}" for c in chunks]
        service.index.write([DocumentWrite(article, chunks, hashes)],
                            dict(zip(hashes, vecs, strict=True)))
        service.index.save_vectors()
        t = time.perf_counter()
        service.ask(questions[i], k=10)
        repeated_after.append((time.perf_counter() - t) * 1000)
    rss_end, parts_end = current_rss_mb(), rss_parts_mb()
    return {"open_s": t_open, "ready_s": t_ready, "rss_start_mb": rss_before,
            "loaded_saved_base": bool(saved_before), "base_generation": view.base_generation,
            "segments_at_ready": view.segments, "save_wait_s": t_saved,
            "rss_ready_mb": rss_ready, "rss_end_mb": rss_end, "peak_rss_mb": peak_rss_mb(),
            "rss_ready_parts_mb": parts_ready, "rss_end_parts_mb": parts_end,
            "questions": len(times), "p50_ms": pctl(times, 50), "p99_ms": pctl(times, 99),
            "mean_ms": float(np.mean(times)),
            "cached_p50_ms": pctl(repeat, 50), "cached_p99_ms": pctl(repeat, 99),
            "real_questions": len(real), "real_p50_ms": pctl(real, 50) if real else None,
            "real_p99_ms": pctl(real, 99) if real else None,
            "write_one_article_s": t_write, "save_vectors_after_write_s": t_save,
            "first_question_after_write_ms": after[0], "second_question_after_write_ms": after[1],
            "repeated_question_after_write_ms": repeated_after,
            "sample_question": questions[2]}


def run_worker(phase: str, argv: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, __file__, "--worker", phase, *argv], env=env,
                         stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--chunks-per-article", type=int, default=12)
    ap.add_argument("--sentences", type=int, default=8, help="sentences per chunk")
    ap.add_argument("--batch", type=int, default=200, help="articles per Store.write")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--real", type=lambda v: Path(v) if v else None,
                    default=DEV / "queries.json",
                    help="a gold set whose first --questions questions are also timed "
                         "(default: the MultiHop-RAG dev questions; '' for none)")
    ap.add_argument("--writes", type=int, default=6,
                    help="writes after the first, each followed by a repeated question")
    ap.add_argument("--basis", type=Path, default=Path("/tmp/dev/rag.sqlite3"),
                    help="an index of real chunks: vectors, vocabulary and publishers")
    add_generator_args(ap)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/svc-scale/index"))
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the built index")
    ap.add_argument("--json", type=Path, help="also write the figures alone here")
    ap.add_argument("--worker", choices=["build", "serve"], help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def report(r: dict) -> str:
    b = r["build"]
    c = b["counts"]
    lines = [
        f"whole service at {c['chunks']:,} chunks ({c['documents']:,} articles, "
        f"{c.get('sentences', 0):,} sentences), FAISS {b['vector_index']}",
        f"build: store writes {b['write_s']:.0f} s + save_vectors {b['save_vectors_s']:.0f} s "
        f"(generating the text and vectors {b['generate_s']:.0f} s, not counted); "
        f"peak RSS {b['peak_rss_mb']:,.0f} MB; on disk {b['disk_mb']:,.0f} MB"]
    for name in ("serve", "restart"):
        s = r.get(name)
        if s is None:
            continue
        start = "saved keyword base loaded" if s.get("loaded_saved_base") else "built"
        lines += [
            f"{name} ({start}): ready in {s['ready_s']:.1f} s; RSS after warm-up "
            f"{s['rss_ready_mb']:,.0f} MB, at the end {s['rss_end_mb']:,.0f} MB (of which "
            f"mapped files {s['rss_end_parts_mb'].get('RssFile', 0):,.0f} MB), peak "
            f"{s['peak_rss_mb']:,.0f} MB",
            f"  questions ({s['questions']}, hybrid, k=10, answer on, in process): p50 "
            f"{s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms; repeated (cached embeddings) "
            f"p50 {s['cached_p50_ms']:.1f} ms",
            *([f"  real questions ({s['real_questions']} MultiHop-RAG dev questions, ~27 "
               f"keyword terms, the same settings): p50 {s['real_p50_ms']:.1f} ms, p99 "
               f"{s['real_p99_ms']:.1f} ms"] if s.get("real_questions") else []),
            f"  one article written: {s['write_one_article_s']:.2f} s + save_vectors "
            f"{s['save_vectors_after_write_s']:.2f} s; next question "
            f"{s['first_question_after_write_ms']:,.0f} ms, the one after "
            f"{s['second_question_after_write_ms']:.1f} ms"]
        if s.get("repeated_question_after_write_ms"):
            again = s["repeated_question_after_write_ms"]
            lines.append(f"  {len(again)} more writes, each followed by a question asked before: "
                         f"median {np.median(again):.0f} ms "
                         f"({', '.join(f'{x:.0f}' for x in again)})")
    s = r.get("restart") or r["serve"]
    real = f" ({s['real_p50_ms']:.1f} on the real questions)" if s.get("real_questions") else ""
    lines.append(f"targets (issue #4, 1M chunks): p50 <= 50 ms: {s['p50_ms']:.1f}{real}; "
                 f"RSS <= 4 GiB: {max(r['serve']['peak_rss_mb'], s['peak_rss_mb']) / 1024:.2f} "
                 "GiB peak")
    return "\n".join(lines)


def ratios(r: dict) -> dict[str, float]:
    """Same-run ratios: the restart against the cold start, the real questions against the
    synthetic ones, cached embeddings and the first question after a write against the
    plain p50 (of the restart, the state a server runs in most of the time)."""
    out: dict[str, float] = {}

    def put(key: str, a: float | None, b: float | None) -> None:
        if a is not None and b:
            out[key] = a / b

    cold, warm = r["serve"], r["restart"]
    put("restart_ready_vs_cold_start", warm["ready_s"], cold["ready_s"])
    put("restart_peak_rss_vs_cold_start", warm["peak_rss_mb"], cold["peak_rss_mb"])
    put("restart_p50_vs_cold_start", warm["p50_ms"], cold["p50_ms"])
    put("real_p50_vs_synthetic_p50", warm["real_p50_ms"], warm["p50_ms"])
    put("cached_p50_vs_p50", warm["cached_p50_ms"], warm["p50_ms"])
    put("first_question_after_write_vs_p50", warm["first_question_after_write_ms"],
        warm["p50_ms"])
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        fn = worker_build if args.worker == "build" else worker_serve
        print(json.dumps(fn(args)))
        return 0
    raw = sys.argv[1:] if argv is None else argv
    from rag.core.config import Settings
    from rag.index.embedded.store import Store

    result: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    reused = bool(args.keep and Store.exists(args.workdir)
                  and (args.workdir / "build.json").exists())
    if reused:
        result["build"] = json.loads((args.workdir / "build.json").read_text())
        log("reusing the built index")
    else:
        shutil.rmtree(args.workdir, ignore_errors=True)
        args.workdir.mkdir(parents=True)
        log(f"building {args.chunks:,} chunks in {args.workdir}")
        result["build"] = run_worker("build", raw)
        (args.workdir / "build.json").write_text(json.dumps(result["build"]))
    for old in args.workdir.glob("lexical-*"):  # a cold start first: no saved keyword base
        shutil.rmtree(old)
    log("serving (cold start)")
    result["serve"] = run_worker("serve", raw)
    log("serving again (restart)")
    result["restart"] = run_worker("serve", raw)
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    print(report(result))
    result["ratios"] = ratios(result)
    run = {"chunks": args.chunks, "chunks_per_article": args.chunks_per_article,
           "sentences_per_chunk": args.sentences, "batch": args.batch,
           "questions": args.questions, "real": str(args.real) if args.real else None,
           "writes": args.writes, "runtime": Settings().runtime, "basis": str(args.basis),
           "basis_found": args.basis.exists(), "reused_build": reused,
           "generator": {"mix": args.mix, "alpha": args.alpha, "noise": args.noise,
                         "seed": args.seed}}
    figures = {k: v for k, v in result.items() if k != "args"}  # the settings say those
    log(f"results: {write_results('bench_service_scale', figures, run, command())}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
