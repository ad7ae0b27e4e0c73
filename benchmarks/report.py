"""docs/benchmarks.md from the latest benchmarks/results/*.json (one file per bench, which
each run replaces).

    python benchmarks/report.py > docs/benchmarks.md     (make docs)

The page is a function of the results files alone (no clock, no machine probing): the same
files give the same text, and tests/test_benchmark_report.py fails when docs/benchmarks.md
is not what ``render()`` makes of benchmarks/results/. Run as a script, it also draws the
PNGs the page links (bench_scale's latency and recall against N, when a run has more than
one N) into docs/.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
DEV_INDEX = "/tmp/dev"
SCALE_PLOT = "bench_scale.png"

# name -> (title, the command to run it on a 2-core machine, roughly how long it takes there:
# bench_service_scale's and bench_distributed's from their docstrings' timings, bench_scale's
# timed, the others estimated)
BENCHES: dict[str, tuple[str, str, str]] = {
    "bench_query": (
        "Query latency and throughput over HTTP",
        f"python benchmarks/bench_query.py --index {DEV_INDEX} --questions 300 --clients 8 "
        "--workers 2", "~2-4 minutes"),
    "bench_ingest": (
        "Ingest speed against plain sentence-transformers",
        "python benchmarks/bench_ingest.py --articles 120", "~4-6 minutes"),
    "bench_distributed": (
        "Ingest on Ray against the local ingest",
        "python benchmarks/bench_distributed.py --articles 120 --workers 1 2",
        "~3 minutes"),
    "bench_load": (
        "Load: queries while documents are written",
        f"python benchmarks/bench_load.py --index {DEV_INDEX} --clients 8 --seconds 20",
        "~1 minute"),
    "bench_scale": (
        "Layers at scale: keyword index (and FAISS)",
        f"python benchmarks/bench_scale.py --sizes 100000 --keyword-only "
        f"--basis {DEV_INDEX}/rag.sqlite3", "~15 seconds"),
    "bench_service_scale": (
        "The whole service at scale",
        f"python benchmarks/bench_service_scale.py --chunks 100000 "
        f"--basis {DEV_INDEX}/rag.sqlite3", "~3 minutes"),
}


# ---------------------------------------------------------------- formatting


def num(x: Any, digits: int | None = None) -> str:
    """A figure for a table: thousands separated, fewer decimals the larger it is."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x:  # NaN
            return "–"
        if digits is None:
            digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
        return f"{x:,.{digits}f}"
    return str(x)


def ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}x"


def cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out


def machine_line(m: dict) -> str:
    mem = f", {num(m['memory_gb'], 1)} GB memory" if m.get("memory_gb") is not None else ""
    py = f"; Python {m['python']}" if m.get("python") else ""
    return f"{m.get('cpu', 'unknown CPU')}, {m.get('cores', '?')} cores{mem}{py}"


def when_line(when: str) -> str:
    """``2026-12-06T07:42:09+00:00`` -> ``2026-12-06 07:42 UTC``."""
    return f"{when[:10]} {when[11:16]} UTC" if len(when) >= 16 else when


def settings_line(settings: dict) -> str:
    parts = []
    for key, value in settings.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = " ".join(str(v) for v in value) or "none"
        parts.append(f"{key.replace('_', ' ')} {value}")
    return "; ".join(parts)


def ratio_rows(ratios: dict[str, float], skip: set[str] | None = None) -> list[str]:
    rows = [[f"`{k}`", ratio(v)] for k, v in ratios.items() if k not in (skip or set())]
    return ["", *table(["same-run ratio", "value"], rows)] if rows else []


# ---------------------------------------------------------------- one renderer a bench


def query_table(f: dict, s: dict) -> list[str]:
    r = f.get("ratios", {})
    clients = s.get("clients", f["concurrent"].get("clients"))
    inp, one, many, busy = f["in_process"], f["single"], f["concurrent"], f["during_ingest"]
    rows = [
        ["in-process `Service.ask` (no HTTP)", num(inp["p50"]), num(inp["p99"]), "–", "–",
         "1.00x", "(baseline)"],
        ["HTTP, 1 client", num(one["p50"]), num(one["p99"]), num(one.get("qps")), "–",
         ratio(r.get("http_1_client_p50_vs_in_process")), "p50 / in-process p50"],
        [f"HTTP, {clients} clients", num(many["p50"]), num(many["p99"]), num(many["qps"]),
         num(many["errors"]),
         f"{ratio(r.get(f'http_{clients}_clients_qps_vs_1_client'))} q/s, "
         f"{ratio(r.get(f'http_{clients}_clients_p50_vs_1_client'))} p50",
         "q/s and p50 of 1 client"],
        ["HTTP, 1 client while `rag ingest` runs", num(busy["p50"]), num(busy["p99"]), "–",
         "–", ratio(r.get("during_ingest_p50_vs_idle")), "p50 / idle 1-client p50"],
    ]
    for w, wf in sorted(f.get("workers", {}).items(), key=lambda kv: int(kv[0])):
        rows.append([f"HTTP, {clients} clients, `--workers {w}`", num(wf["p50"]),
                     num(wf["p99"]), num(wf["qps"]), num(wf["errors"]),
                     ratio(r.get(f"workers_{w}_qps_vs_1_worker")), "q/s / 1-process q/s"])
    out = table(["phase", "p50 ms", "p99 ms", "queries/s", "errors", "ratio", "against"], rows)
    mem = f.get("server_memory_mb", {}).get("after_load")
    if mem:
        out += ["", f"Server memory after the {clients}-client phase: RSS {num(mem['rss'])} MB, "
                f"PSS {num(mem['pss'])} MB. Server CPU per query: 1 client "
                f"{num(one.get('server_cpu_ms_per_query'))} ms, {clients} clients "
                f"{num(many.get('server_cpu_ms_per_query'))} ms "
                f"({num(100 * many.get('server_cores', 0), 0)}% of a core)."]
    if busy.get("ingest_still_running") is False:
        out += ["", "(The ingest ended before the during-ingest phase did.)"]
    return out


def ingest_table(f: dict, s: dict) -> list[str]:
    base = f["baseline"]
    rows = [["baseline: `SentenceTransformer.encode` (torch), 230-token windows",
             num(base["seconds"]), num(base["tokens_per_s"]), num(base["windows"]), "1.00x",
             "–", "–"]]
    for name, r in f["runtimes"].items():
        changed = r.get("changed_article", {})
        rows.append([f"`rag ingest`, runtime {name}", num(r["seconds"]),
                     num(r["tokens_per_s"]), num(r["chunks"]),
                     ratio(f.get("ratios", {}).get(f"{name}_speed_vs_baseline", r.get("ratio"))),
                     f"{num(100 * r['reingest_share'], 1)}%",
                     f"{changed.get('texts_embedded', '?')} of "
                     f"{changed.get('chunks_written', '?')} chunks"])
    return [f"{num(f['articles'])} articles, {num(f['body_tokens'])} body tokens, "
            f"{f.get('threads', '?')} threads.", "",
            *table(["run", "seconds", "tokens/s", "chunks", "speed vs baseline",
                    "unchanged re-ingest (share of first)", "one changed article: re-embedded"],
                   rows)]


def distributed_table(f: dict, s: dict) -> list[str]:
    local = f["local"]
    rows = [["local ingest (`Service.ingest_paths`)", num(local["seconds"]),
             num(local["tokens_per_s"]), "1.00x"]]
    for w, r in sorted(f.get("ray", {}).items(), key=lambda kv: int(kv[0])):
        rows.append([f"Ray local, {w} worker{'s' if int(w) > 1 else ''}", num(r["seconds"]),
                     num(r["tokens_per_s"]),
                     ratio(f.get("ratios", {}).get(f"ray_{w}_workers_speed_vs_local",
                                                   r.get("ratio")))])
    return [f"{num(f['articles'])} articles, {num(f['body_tokens'])} body tokens, "
            f"{f.get('cpus', '?')} CPUs; Ray's start-up ({num(f.get('ray_startup_s'))} s) is "
            "not in the Ray runs.", "",
            *table(["run", "seconds", "tokens/s", "speed vs local"], rows)]


def load_table(f: dict, s: dict) -> list[str]:
    rows = []
    for name, label in (("queries", f"queries ({s.get('clients', '?')} clients)"),
                        ("writes", "writes (batches of 16 articles)")):
        r = f[name]
        rows.append([label, num(r["count"]), num(r["per_s"]), num(r["p50_ms"]),
                     num(r["p99_ms"]), num(r["errors"])])
    return [f"{num(f['seconds'], 0)} s, with `rag ingest` running beside the clients. No "
            "baseline in this run, so no ratios (bench_query has them); the target is 0 "
            "errors.", "",
            *table(["stream", "count", "per s", "p50 ms", "p99 ms", "errors"], rows)]


def scale_table(f: dict, s: dict) -> list[str]:
    results = f["results"]
    r = f.get("ratios", {})
    shown: set[str] = set()
    out: list[str] = []
    keyword = [res for res in results if "bm25s" in res]
    if keyword:
        rows = []
        for res in keyword:
            b, n = res["bm25s"], res["n"]
            key = f"bm25s_filtered_p50_vs_unfiltered_n{n}"
            shown.add(key)
            rows.append([num(n), num(b["build_s"]), num(b["index_mb"]), num(b["rss_mb"]),
                         num(b["search"]["p50_ms"]), num(b["search"]["p99_ms"]),
                         num(b["search_filtered"]["p50_ms"]), ratio(r.get(key)),
                         num(b["search"]["mean_hits"], 0)])
        out += ["Keyword index (in-memory BM25; `LexicalIndex.search`, top 100, 6-term "
                "questions; filtered: 5% of the documents allowed):", "",
                *table(["N chunks", "build s", "index MB", "peak RSS MB", "p50 ms", "p99 ms",
                        "filtered p50 ms", "filtered / unfiltered p50", "mean hits"], rows)]
    vector = [res for res in results if res.get("vectors")]
    if vector:
        rows = []
        for res in vector:
            n = res["n"]
            for name, v in res["vectors"].items():
                c = v["chosen"]
                keys = (f"{name}_p50_vs_flat_n{n}", f"{name}_serve_rss_vs_flat_n{n}")
                shown.update(keys)
                rows.append([num(n), f"`{name}`", v.get("params", ""), num(v["build_s"]),
                             num(v["serve_rss_mb"]), num(c["p50_ms"]), num(c["p99_ms"]),
                             num(c.get("recall"), 3),
                             "1.00x" if name == "flat" else ratio(r.get(keys[0])),
                             "1.00x" if name == "flat" else ratio(r.get(keys[1]))])
        out += ["", "FAISS (single-query search, k 10, one thread; recall@10 against exact "
                "search on held-out queries):", "",
                *table(["N", "index", "params", "build s", "serve RSS MB", "p50 ms", "p99 ms",
                        "recall@10", "p50 vs flat", "RSS vs flat"], rows)]
    out += ratio_rows(r, shown)
    if len({res["n"] for res in results}) > 1:
        out += ["", f"![p50 latency and recall@10 against N]({SCALE_PLOT})"]
    return out


def service_scale_table(f: dict, s: dict) -> list[str]:
    b = f["build"]
    c = b["counts"]
    rows = []
    for name, label in (("serve", "cold start"), ("restart", "restart")):
        r = f.get(name)
        if not r:
            continue
        base = "saved keyword base loaded" if r.get("loaded_saved_base") else "built"
        rows.append([f"{label} ({base})", num(r["ready_s"]), num(r["rss_ready_mb"]),
                     num(r["peak_rss_mb"]), num(r["p50_ms"]), num(r["p99_ms"]),
                     num(r.get("real_p50_ms")), num(r["cached_p50_ms"]),
                     num(r["first_question_after_write_ms"])])
    return [f"{num(c['chunks'])} chunks ({num(c['documents'])} articles, "
            f"{num(c.get('sentences', 0))} sentences), FAISS {b['vector_index']}; build: store "
            f"writes {num(b['write_s'])} s + save_vectors {num(b['save_vectors_s'])} s, peak RSS "
            f"{num(b['peak_rss_mb'])} MB, {num(b['disk_mb'])} MB on disk.", "",
            *table(["start", "ready s", "RSS after warm-up MB", "peak RSS MB", "p50 ms",
                    "p99 ms", "real questions p50 ms", "cached p50 ms",
                    "first question after a write ms"], rows),
            *ratio_rows(f.get("ratios", {}))]


def generic_table(f: dict, s: dict) -> list[str]:
    """Any other results file: its top-level numbers, then its ratios."""
    rows = [[k, num(v)] for k, v in f.items()
            if isinstance(v, int | float) and not isinstance(v, bool)]
    out = table(["figure", "value"], rows) if rows else []
    return out + ratio_rows(f.get("ratios", {}))


RENDERERS: dict[str, Callable[[dict, dict], list[str]]] = {
    "bench_query": query_table, "bench_ingest": ingest_table,
    "bench_distributed": distributed_table, "bench_load": load_table,
    "bench_scale": scale_table, "bench_service_scale": service_scale_table}


# ---------------------------------------------------------------- the page


def load(results: Path) -> dict[str, dict]:
    """The results files in ``results`` by bench name (a file that is not JSON is skipped)."""
    out = {}
    for path in sorted(results.glob("*.json")) if results.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("figures"), dict):
            out[data.get("bench", path.stem)] = data
    return out


def section(name: str, data: dict) -> list[str]:
    title = BENCHES.get(name, (name,))[0]
    figures, settings = data["figures"], data.get("settings", {})
    try:
        body = RENDERERS.get(name, generic_table)(figures, settings)
    except (KeyError, TypeError, ValueError, AttributeError):
        body = ["(figures in a shape this page does not know: shown raw)", "",
                *generic_table(figures, settings)]
    lines = [f"## {name}: {title}", "",
             f"- command: `{data.get('command', '?')}`",
             f"- machine: {machine_line(data.get('machine', {}))}",
             f"- commit: `{data.get('commit', '?')}`, run {when_line(data.get('when', '?'))}"]
    if settings:
        lines.append(f"- settings: {settings_line(settings)}")
    return [*lines, "", *body, ""]


def render(results: Path = RESULTS) -> str:
    """The page docs/benchmarks.md, from the results files in ``results``."""
    found = load(results)
    lines = ["# Benchmarks", "",
             "<!-- generated by `python benchmarks/report.py` (make docs) from "
             "benchmarks/results/*.json; do not edit -->", "",
             "Each benchmark in benchmarks/ writes `benchmarks/results/<bench>.json` at the end "
             "of a run: the command, the machine, the commit, the settings and the figures. "
             "This page shows the latest run of each. The machine is shared, so absolute "
             "times move between runs: compare the ratios, each against a baseline measured "
             "in the same run. The benches that need an index use a dev index: `rag ingest "
             f"eval/data/multihop-rag-dev/corpus.json --index {DEV_INDEX}`.", ""]
    order = [n for n in BENCHES if n in found] + sorted(n for n in found if n not in BENCHES)
    for name in order:
        lines += section(name, found[name])
    missing = [n for n in BENCHES if n not in found]
    if missing:
        lines += ["## Not run yet", ""]
        lines += [f"- {n} ({BENCHES[n][0]}; {BENCHES[n][2]} on 2 cores): `{BENCHES[n][1]}`"
                  for n in missing]
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- the README's summary

README_START, README_END = "<!-- speed:start -->", "<!-- speed:end -->"


def _speed_rows(found: dict[str, dict]) -> list[list[str]]:
    rows: list[list[str]] = []
    q = found.get("bench_query", {}).get("figures")
    if q:
        r, clients = q.get("ratios", {}), q["concurrent"].get("clients", "?")
        rows.append(["a question, in process (p50)", f"{num(q['in_process']['p50'])} ms", ""])
        rows.append(["a question over HTTP, 1 client (p50 / p99)",
                     f"{num(q['single']['p50'])} / {num(q['single']['p99'])} ms",
                     f"{ratio(r.get('http_1_client_p50_vs_in_process'))} in-process p50"])
        rows.append([f"throughput, {clients} clients, 1 process",
                     f"{num(q['concurrent']['qps'])} questions/s",
                     f"{ratio(r.get(f'http_{clients}_clients_qps_vs_1_client'))} 1 client"])
        for w, wf in sorted(q.get("workers", {}).items(), key=lambda kv: int(kv[0])):
            rows.append([f"throughput, {clients} clients, `--workers {w}`",
                         f"{num(wf['qps'])} questions/s",
                         f"{ratio(r.get(f'workers_{w}_qps_vs_1_worker'))} 1 process"])
        mem = q.get("server_memory_mb", {}).get("after_load")
        if mem:
            rows.append(["server memory, dev index (RSS)", f"{num(mem['rss'])} MB", ""])
    i = found.get("bench_ingest", {}).get("figures")
    if i:
        for name, run in i["runtimes"].items():
            rows.append([f"ingest, runtime {name}", f"{num(run['tokens_per_s'])} tokens/s",
                         f"{ratio(i.get('ratios', {}).get(f'{name}_speed_vs_baseline'))} "
                         "sentence-transformers on torch"])
    sc = found.get("bench_service_scale", {}).get("figures")
    if sc:
        serve, n = sc.get("serve", {}), sc["build"]["counts"]["chunks"]
        real = serve.get("real_p50_ms")
        rows.append([f"a {'dev ' if real else ''}question at {num(n)} chunks (p50)",
                     f"{num(real if real else serve.get('p50_ms'))} ms",
                     f"server RSS {num(serve.get('rss_ready_mb'))} MB"])
    return rows


def readme_speed(results: Path = RESULTS) -> str:
    """The README's Speed block: the headline figures of the latest runs, with the page."""
    rows = _speed_rows(load(results))
    if not rows:
        return "No benchmark results yet: see [docs/benchmarks.md](docs/benchmarks.md)."
    return "\n".join([*table(["what", "measured", "same-run ratio"], rows), "",
                      "On a shared 2-core machine; commands, machines, commits and every "
                      "figure: [docs/benchmarks.md](docs/benchmarks.md)."])


def rewrite_readme(path: Path, results: Path = RESULTS) -> None:
    text = path.read_text()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    path.write_text(f"{head}{README_START}\n{readme_speed(results)}\n{README_END}{tail}")


# ---------------------------------------------------------------- plots


def write_plots(results: Path = RESULTS, out: Path = DOCS) -> list[Path]:
    """The PNGs ``render`` links: bench_scale's p50 (and recall@10) against N, when its run
    has more than one N."""
    data = load(results).get("bench_scale")
    if not data:
        return []
    runs = sorted(data["figures"]["results"], key=lambda r: r["n"])
    if len({r["n"] for r in runs}) < 2:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    recall: dict[str, list[tuple[int, float]]] = {}
    for r in runs:
        if "bm25s" in r:
            series.setdefault("keyword (BM25)", []).append((r["n"], r["bm25s"]["search"]["p50_ms"]))
            series.setdefault("keyword, filtered", []).append(
                (r["n"], r["bm25s"]["search_filtered"]["p50_ms"]))
        for name, v in r.get("vectors", {}).items():
            series.setdefault(f"FAISS {name}", []).append((r["n"], v["chosen"]["p50_ms"]))
            if v["kind"] != "flat":
                recall.setdefault(f"FAISS {name}", []).append((r["n"], v["chosen"]["recall"]))
    fig, axes = plt.subplots(1, 2 if recall else 1, figsize=(10 if recall else 6, 4),
                             squeeze=False)
    ax = axes[0][0]
    for label, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel="N chunks", ylabel="p50 ms (one query)",
           title="search latency against N")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if recall:
        ax = axes[0][1]
        for label, pts in recall.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set(xscale="log", xlabel="N chunks", ylabel="recall@10",
               title="approximate search: recall@10 against N")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / SCALE_PLOT
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return [path]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, metavar="DIR",
                    help="preview the page of these results files instead of "
                         "benchmarks/results/ (no PNG is written then)")
    ap.add_argument("--readme", type=Path, metavar="README",
                    help="rewrite the Speed block of this README instead")
    args = ap.parse_args(argv)
    if args.readme:
        rewrite_readme(args.readme, args.results or RESULTS)
        return
    sys.stdout.write(render(args.results or RESULTS))
    if args.results is None:
        for path in write_plots():
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
