"""Ingest speed: `rag ingest` end to end against plain sentence-transformers, in one process.

    python benchmarks/bench_ingest.py [--articles 120] [--runtimes torch onnx onnx-int8]

Baseline (measured first, in the same run): ``SentenceTransformer(model).encode(windows)`` on
torch with default settings, over the articles' bodies cut into 230-token windows. Then, for
each embedding runtime (RAG_RUNTIME), a fresh index is built by the service's own ingest
(parse the JSON, chunk, embed, write SQLite, save FAISS, commit). Speed is article-body
tokens per second; the ratios are against the baseline. Afterwards: re-ingesting the
unchanged articles (its cost as a share of the first ingest), and changing one article (how
many texts are embedded again). Quality of each runtime is a separate measurement
(`rag eval`, eval/README.md).

Writes benchmarks/results/bench_ingest.json (benchmarks/common.py). Each runtime ingests the
articles three times (the first one whole, then unchanged, then with one article changed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import DEV, command, write_results

CORPUS = DEV / "corpus.json"
WINDOW = 230


def windows(tokenizer, bodies: list[str]) -> tuple[list[str], int]:
    """Bodies cut into WINDOW-token texts (by the tokenizer's offsets); total body tokens."""
    out, total = [], 0
    for body in bodies:
        enc = tokenizer(body, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        total += len(offsets)
        for i in range(0, len(offsets), WINDOW):
            part = offsets[i:i + WINDOW]
            out.append(body[part[0][0]:part[-1][1]])
    return out, total


def baseline(model_path: str, bodies: list[str]) -> tuple[float, int, int]:
    """Seconds to encode the windows with plain sentence-transformers; windows; tokens."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    texts, tokens = windows(model.tokenizer, bodies)
    model.encode(texts[:8])  # warm-up, as the service's model is loaded before timing too
    start = time.perf_counter()
    model.encode(texts)
    return time.perf_counter() - start, len(texts), tokens


def timed_ingest(settings, path: Path) -> tuple[float, dict]:
    from rag.service import Service

    svc = Service.open(settings, create=True, for_writing=True)
    svc.embedder.encode(["warm-up"])  # model load / ONNX export are not ingest work
    start = time.perf_counter()
    report = svc.ingest_paths([path])
    svc.index.save_vectors()
    elapsed = time.perf_counter() - start
    svc.index.close()
    return elapsed, report.summary()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=120, help="first N dev articles")
    ap.add_argument("--runtimes", nargs="+", default=["torch", "onnx", "onnx-int8"],
                    choices=["torch", "onnx", "onnx-int8"], help="embedding runtimes to time")
    ap.add_argument("--json", type=Path, help="also write the figures alone here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rag.core.config import Settings
    from rag.embedding.base import resolve_model_path

    records = json.loads(CORPUS.read_text())[: args.articles]
    bodies = [r["body"] for r in records]
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    subset = work / "articles.json"
    subset.write_text(json.dumps(records))
    threads = os.cpu_count() or 1

    base_s, n_windows, tokens = baseline(resolve_model_path(Settings().model), bodies)
    base_tps = tokens / base_s
    print(f"{len(records)} articles, {tokens:,} body tokens, {threads} threads")
    print(f"{'run':<34}{'seconds':>9}{'tokens/s':>10}{'chunks':>8}{'ratio':>7}")
    print(f"{'baseline: ST.encode, 230-tok windows':<34}{base_s:>9.1f}{base_tps:>10,.0f}"
          f"{n_windows:>8}{1.0:>7.2f}", flush=True)
    results = {"articles": len(records), "body_tokens": tokens, "threads": threads,
               "baseline": {"seconds": base_s, "tokens_per_s": base_tps, "windows": n_windows},
               "runtimes": {}}
    ratios = {}
    for runtime in args.runtimes:
        settings = Settings(index_dir=work / runtime, runtime=runtime)
        first, summary = timed_ingest(settings, subset)
        again, _ = timed_ingest(settings, subset)
        changed = list(records)
        changed[0] = {**records[0], "body": records[0]["body"] + "\n\nA sentence added later."}
        subset_changed = work / f"changed-{runtime}.json"
        subset_changed.write_text(json.dumps(changed))
        _, after_change = timed_ingest(settings, subset_changed)
        tps = tokens / first
        print(f"{'rag ingest, runtime=' + runtime:<34}{first:>9.1f}{tps:>10,.0f}"
              f"{summary['chunks_written']:>8}{tps / base_tps:>7.2f}", flush=True)
        print(f"    unchanged re-ingest {again:.2f}s = {100 * again / first:.1f}% of the first; "
              f"one changed article re-embedded {after_change['texts_embedded']} of its "
              f"{after_change['chunks_written']} chunks", flush=True)
        results["runtimes"][runtime] = {
            "seconds": first, "tokens_per_s": tps, "ratio": tps / base_tps,
            "chunks": summary["chunks_written"], "reingest_s": again,
            "reingest_share": again / first, "changed_article": after_change}
        ratios[f"{runtime}_speed_vs_baseline"] = tps / base_tps
    results["ratios"] = ratios
    run = {"articles": len(records), "runtimes": args.runtimes, "threads": threads,
           "model": Settings().model, "window_tokens": WINDOW}
    print(f"results: {write_results('bench_ingest', results, run, command())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
