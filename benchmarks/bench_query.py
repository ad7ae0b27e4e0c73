"""Query latency and throughput over real HTTP (a `rag serve` subprocess), in one run.

    python benchmarks/bench_query.py --index /tmp/dev [--questions 300] [--clients 8] \
        [--workers 2]

(a dev index: ``rag ingest eval/data/multihop-rag-dev/corpus.json --index /tmp/dev``.)

Every request is POST /query with a distinct dev question, hybrid mode, k=10, answer on.
Phases, all against the same server process:
  1. in-process baseline: Service.ask on the same index in this process (no HTTP);
  2. one client, sequential requests (keep-alive): p50 / p99 latency;
  3. N concurrent clients: throughput (queries/s), errors, p50 / p99;
  4. one client again while `rag ingest` of the dev corpus runs into another index on the
     same machine: p50 against phase 2's.
Latencies are measured by the client (wall clock, request to parsed response). Ratios are
against phase 1 and 2 of the same run; the machine is shared, so absolute times move. For
phases 2 and 3 the server's CPU time per query and its share of one core are read from
/proc: a single process that cannot fill both cores under load is bound by the GIL. The
server's memory is read there too, after the warm-up and after phase 3 (RSS, PSS and peak
RSS over all its processes). With ``--workers W``, phase 3 is repeated against
``rag serve --workers W`` (throughput ratio to the 1-process server of the same run).

Writes benchmarks/results/bench_query.json (benchmarks/common.py); ``--json`` also writes
the figures alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from common import DEV, command, write_results

QUERIES = DEV / "queries.json"
CORPUS = DEV / "corpus.json"


def percentile(values: list[float], q: float) -> float:
    from rag.evaluation.metrics import percentile as nearest_rank

    return nearest_rank(values, q)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, port: int, log: Path, workers: int = 1) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX_DIR": str(index),
           "RAG_PORT": str(port), "RAG_WORKERS": str(workers)}
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve"], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"server did not start in 120 s; see {log}")


class Client:
    """One keep-alive HTTP/1.1 connection of the standard library's http.client: the load
    generator shares the machine's 2 cores with the server, and measured in one run httpx
    used 1.5-2.3 ms of CPU a request against 0.4-0.6 ms for this."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def ask(self, question: str) -> tuple[float, int]:
        """(ms from request to parsed response, HTTP status; 0 for a broken connection)."""
        body = json.dumps({"question": question, "k": 10, "answer": True}).encode()
        start = time.perf_counter()
        try:
            self.conn.request("POST", self.path, body, {"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            json.loads(resp.read())
            status = resp.status
        except (OSError, http.client.HTTPException, ValueError):
            self.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            status = 0
        return (time.perf_counter() - start) * 1000, status

    def close(self) -> None:
        self.conn.close()


def sequential(url: str, questions: list[str]) -> list[float]:
    client = Client(url)
    try:
        out = []
        for q in questions:
            ms, status = client.ask(q)
            if status != 200:
                raise SystemExit(f"HTTP {status} for {q!r}")
            out.append(ms)
        return out
    finally:
        client.close()


def concurrent(url: str, questions: list[str], clients: int) -> tuple[float, list[float], int]:
    """Each client takes the next question until none are left; (seconds, latencies, errors)."""
    lock = threading.Lock()
    todo = list(questions)
    latencies: list[float] = []
    errors = [0]

    def worker() -> None:
        client = Client(url)
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    q = todo.pop()
                ms, status = client.ask(q)
                with lock:
                    latencies.append(ms)
                    errors[0] += status != 200
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, errors[0]


def family(pid: int) -> list[int]:
    """The process and its live child processes (a server's workers), from /proc (Linux)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return [pid] + [p for kid in kids if Path(f"/proc/{kid}").exists() for p in family(int(kid))]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process and its live child processes have used so far."""
    total = 0.0
    for p in family(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def memory_mb(pid: int) -> dict[str, float]:
    """The server's memory, summed over its processes: resident now (``rss``), each process's
    peak resident (``peak``, VmHWM), and the proportional set (``pss``: pages shared between
    workers, such as the memory-mapped keyword base, split between them, so counted once)."""
    out = {"rss": 0.0, "peak": 0.0, "pss": 0.0, "processes": 0}
    for p in family(pid):
        status = Path(f"/proc/{p}/status").read_text().splitlines()
        fields = {k: v.split()[0] for k, _, v in (line.partition(":") for line in status)
                  if v.strip()}
        out["rss"] += int(fields.get("VmRSS", 0)) / 1024
        out["peak"] += int(fields.get("VmHWM", 0)) / 1024
        rollup = Path(f"/proc/{p}/smaps_rollup")
        if rollup.exists():
            out["pss"] += sum(int(line.split()[1]) for line in rollup.read_text().splitlines()
                              if line.startswith("Pss:")) / 1024
        out["processes"] += 1
    return out


def memory_line(mem: dict[str, float], when: str) -> str:
    return (f"server memory {when}: RSS {mem['rss']:,.0f} MB, PSS {mem['pss']:,.0f} MB, peak "
            f"RSS {mem['peak']:,.0f} MB ({mem['processes']} process"
            f"{'es' if mem['processes'] > 1 else ''})")


def cpu_use(pid: int, start: float, seconds: float, queries: int) -> tuple[float, float]:
    """The server's CPU ms per query and its share of one core since ``start`` (CPU s)."""
    used = cpu_seconds(pid) - start
    return 1000 * used / queries, used / seconds


def line(name: str, lat: list[float], base: float | None = None, extra: str = "") -> str:
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    ratio = f"{p50 / base:>7.2f}" if base else f"{'':>7}"
    return f"{name:<44}{p50:>9.1f}{p99:>9.1f}{ratio}  {extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True, help="a built dev index")
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--json", type=Path, help="also write the figures alone here")
    ap.add_argument("--workers", type=int, nargs="*", default=[],
                    help="also measure the N-client phase against `rag serve --workers W` "
                         "for each W (ratio to the 1-process server of the same run)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    gold = [q["query"] for q in json.loads(QUERIES.read_text())]
    n = args.questions
    warm, idle, load, busy = gold[:20], gold[20:20 + n], gold[20 + n:20 + 3 * n], \
        gold[20 + 3 * n:20 + 4 * n]

    from rag.core.config import Settings
    from rag.service import Service

    svc = Service.open(Settings(index_dir=args.index), serving=True)
    for q in warm:
        svc.ask(q, k=10)
    inproc = []
    for q in idle:
        start = time.perf_counter()
        svc.ask(q, k=10)
        inproc.append((time.perf_counter() - start) * 1000)
    index_info = {"runtime": svc.settings.runtime, "model": svc.embedder.name,
                  **svc.index.counts()}
    svc.index.close()

    work = Path(tempfile.mkdtemp(prefix="bench-query-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/query"
    server = start_server(args.index, port, work / "server.log")
    results: dict = {}
    try:
        sequential(url, warm)  # the server's caches hold none of the measured questions
        mem_warm = memory_mb(server.pid)
        print(f"{'phase':<44}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>7}")
        print(line("in-process Service.ask (no HTTP)", inproc), flush=True)
        cpu0, start = cpu_seconds(server.pid), time.perf_counter()
        single = sequential(url, idle)
        single_s = time.perf_counter() - start
        single_qps = len(single) / single_s
        cpu_single = cpu_use(server.pid, cpu0, single_s, len(single))
        print(line("HTTP, 1 client", single, percentile(inproc, 50),
                   f"server CPU {cpu_single[0]:.1f} ms/query, {cpu_single[1]:.0%} of a core"),
              flush=True)
        cpu0, mine = cpu_seconds(server.pid), time.process_time()
        seconds, lat, errors = concurrent(url, load, args.clients)
        qps = len(lat) / seconds
        cpu_load = cpu_use(server.pid, cpu0, seconds, len(lat))
        client_ms = 1000 * (time.process_time() - mine) / len(lat)
        print(line(f"HTTP, {args.clients} clients", lat, percentile(single, 50),
                   f"{qps:.1f} queries/s, {errors} errors; server CPU {cpu_load[0]:.1f} "
                   f"ms/query, {cpu_load[1]:.0%} of a core; clients' CPU {client_ms:.1f} "
                   "ms/query"), flush=True)
        mem_load = memory_mb(server.pid)
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        ingest = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "ingest", str(CORPUS), "--index",
             str(work / "other-index")], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        time.sleep(5)  # past the model load, into embedding
        during = sequential(url, busy)
        still_running = ingest.poll() is None
        ingest.kill()
        print(line("HTTP, 1 client, while `rag ingest` runs", during, percentile(single, 50),
                   "" if still_running else "(ingest ended before the phase did)"), flush=True)
        print(memory_line(mem_warm, "after warm-up"))
        print(memory_line(mem_load, f"after the {args.clients}-client phase"), flush=True)
        results = {
            "in_process": {"p50": percentile(inproc, 50), "p99": percentile(inproc, 99)},
            "single": {"p50": percentile(single, 50), "p99": percentile(single, 99),
                       "qps": single_qps, "server_cpu_ms_per_query": cpu_single[0],
                       "server_cores": cpu_single[1]},
            "concurrent": {"clients": args.clients, "qps": qps, "errors": errors,
                           "p50": percentile(lat, 50), "p99": percentile(lat, 99),
                           "server_cpu_ms_per_query": cpu_load[0], "server_cores": cpu_load[1],
                           "client_cpu_ms_per_query": client_ms},
            "during_ingest": {"p50": percentile(during, 50), "p99": percentile(during, 99),
                              "ratio_to_idle": percentile(during, 50) / percentile(single, 50),
                              "ingest_still_running": still_running},
            "server_memory_mb": {"after_warm_up": mem_warm, "after_load": mem_load},
            "ratios": {
                "http_1_client_p50_vs_in_process": percentile(single, 50)
                / percentile(inproc, 50),
                f"http_{args.clients}_clients_qps_vs_1_client": qps / single_qps,
                f"http_{args.clients}_clients_p50_vs_1_client": percentile(lat, 50)
                / percentile(single, 50),
                "during_ingest_p50_vs_idle": percentile(during, 50) / percentile(single, 50)},
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    for workers in args.workers:  # the same questions, new servers (their caches are empty)
        port = free_port()
        url = f"http://127.0.0.1:{port}/query"
        server = start_server(args.index, port, work / f"server-{workers}.log", workers)
        try:
            sequential(url, warm)
            cpu0 = cpu_seconds(server.pid)
            seconds, lat, errors = concurrent(url, load, args.clients)
            rate = len(lat) / seconds
            cpu_w = cpu_use(server.pid, cpu0, seconds, len(lat))
            mem_w = memory_mb(server.pid)
            print(line(f"HTTP, {args.clients} clients, {workers} workers", lat,
                       results["concurrent"]["p50"],
                       f"{rate:.1f} queries/s ({rate / qps:.2f}x), {errors} errors; servers' "
                       f"CPU {cpu_w[0]:.1f} ms/query, {cpu_w[1]:.0%} of a core"), flush=True)
            print(memory_line(mem_w, f"with {workers} workers, after the phase"), flush=True)
            results["ratios"][f"workers_{workers}_qps_vs_1_worker"] = rate / qps
            results.setdefault("workers", {})[str(workers)] = {
                "qps": rate, "ratio": rate / qps, "errors": errors,
                "p50": percentile(lat, 50), "p99": percentile(lat, 99),
                "server_cpu_ms_per_query": cpu_w[0], "server_cores": cpu_w[1],
                "server_memory_mb": mem_w}
        finally:
            server.terminate()
            server.wait(timeout=30)
    settings = {"index": str(args.index), "questions": n, "clients": args.clients,
                "workers": args.workers, "warm_up_questions": len(warm), "k": 10,
                "mode": "hybrid", "answer": True, **index_info}
    print(f"results: {write_results('bench_query', results, settings, command())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
