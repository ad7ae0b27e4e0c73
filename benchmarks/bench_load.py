"""Load: N clients for a fixed time against a real `rag serve` while documents are written.

    python benchmarks/bench_load.py --index /tmp/dev [--clients 8] [--seconds 60]

The server runs over a copy of the given index. For the whole run, N clients send POST /query
(distinct dev questions, cycling; hybrid, k=10, answer on) while a writer thread sends the
dev corpus back through POST /documents in batches of 16 (updates: every article gets a
trailing sentence, so each batch is a real write that changes chunks, FAISS and BM25) and a
`rag ingest` of the corpus into another index loads the machine. Prints throughput, p50/p99
latency and the error count for queries and writes; the target is 0 errors. Not run in CI.
There is no baseline in the run (bench_query.py has the latencies against one), so no ratios.

Writes benchmarks/results/bench_load.json (benchmarks/common.py). Takes ``--seconds`` plus the
server's start (~10 s) and the copy of the index.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_query import CORPUS, QUERIES, free_port, percentile, start_server  # noqa: E402
from common import command, write_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True, help="a built dev index")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    questions = [q["query"] for q in json.loads(QUERIES.read_text())]
    records = json.loads(CORPUS.read_text())
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    index = work / "index"
    shutil.copytree(args.index, index)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(index, port, work / "server.log")
    ingest = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ingest", str(CORPUS), "--index", str(work / "other")],
        env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = threading.Lock()
    query_ms: list[float] = []
    write_ms: list[float] = []
    errors = {"query": 0, "write": 0}
    deadline = time.perf_counter() + args.seconds

    def client(offset: int) -> None:
        with httpx.Client(timeout=60) as http:
            i = offset
            while time.perf_counter() < deadline:
                q = questions[i % len(questions)]
                i += args.clients
                start = time.perf_counter()
                try:
                    ok = http.post(f"{base}/query", json={"question": q, "k": 10}
                                   ).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    query_ms.append((time.perf_counter() - start) * 1000)
                    errors["query"] += not ok

    def writer() -> None:
        with httpx.Client(timeout=300) as http:
            for start_at in range(0, len(records), 16):
                if time.perf_counter() >= deadline:
                    return
                batch = [{**r, "body": r["body"] + "\n\nUpdated for the load test."}
                         for r in records[start_at:start_at + 16]]
                start = time.perf_counter()
                try:
                    resp = http.post(f"{base}/documents", json=batch)
                    ok = resp.status_code == 200 and resp.json()["rejected"] == 0
                except httpx.HTTPError:
                    ok = False
                with lock:
                    write_ms.append((time.perf_counter() - start) * 1000)
                    errors["write"] += not ok

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    threads.append(threading.Thread(target=writer))
    began = time.perf_counter()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        elapsed = time.perf_counter() - began
        ingest.kill()
        server.terminate()
        server.wait(timeout=30)
    print(f"{args.clients} query clients + 1 writer for {elapsed:.0f} s, `rag ingest` running "
          "beside them")
    print(f"queries: {len(query_ms)} ({len(query_ms) / elapsed:.1f}/s), p50 "
          f"{percentile(query_ms, 50):.1f} ms, p99 {percentile(query_ms, 99):.1f} ms, "
          f"errors {errors['query']}")
    print(f"writes:  {len(write_ms)} batches of 16 articles, p50 {percentile(write_ms, 50):.0f} "
          f"ms, p99 {percentile(write_ms, 99):.0f} ms, errors {errors['write']}")

    def summary(ms: list[float], errs: int) -> dict:
        return {"count": len(ms), "per_s": len(ms) / elapsed,
                "p50_ms": percentile(ms, 50) if ms else None,
                "p99_ms": percentile(ms, 99) if ms else None, "errors": errs}

    figures = {"seconds": elapsed, "queries": summary(query_ms, errors["query"]),
               "writes": summary(write_ms, errors["write"]), "ratios": {}}
    run = {"index": str(args.index), "clients": args.clients, "seconds": args.seconds,
           "write_batch_articles": 16, "k": 10}
    print(f"results: {write_results('bench_load', figures, run, command())}")


if __name__ == "__main__":
    sys.exit(main())
