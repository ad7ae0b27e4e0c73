"""The scale benchmarks still run end to end, at a toy size, and write their results file
(their figures are not checked: timings belong in the benchmarks, not in tests).
bench_scale.py's keyword part had stopped running unnoticed when the keyword index grew its
common-term statistics. The runs write to a temporary folder ($BENCH_RESULTS), never over
benchmarks/results/."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

BENCHMARKS = ROOT / "benchmarks"


def run(script: str, results, *args: str) -> dict:
    """Run the script; its results file (benchmarks/common.py's write_results), checked for
    what every results file holds."""
    before = {p: p.stat().st_mtime_ns for p in (BENCHMARKS / "results").glob("*.json")}
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1",
                               "BENCH_RESULTS": str(results)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = {p: p.stat().st_mtime_ns for p in (BENCHMARKS / "results").glob("*.json")}
    assert after == before, "a smoke run wrote into benchmarks/results/"
    bench = script.removesuffix(".py")
    saved = json.loads((results / f"{bench}.json").read_text())
    assert saved["bench"] == bench
    assert saved["command"].startswith(f"python benchmarks/{script} ")
    assert saved["machine"]["cores"] >= 1 and saved["machine"]["cpu"]
    assert saved["commit"] and saved["when"]
    assert isinstance(saved["figures"]["ratios"], dict)
    return saved


def test_bench_scale_keyword_layers_run(tmp_path):
    saved = run("bench_scale.py", tmp_path / "results", "--sizes", "3000", "--keyword-only",
                "--queries", "20", "--basis", str(tmp_path / "none.sqlite3"),
                "--workdir", str(tmp_path / "w"))
    assert saved["settings"]["sizes"] == [3000] and saved["settings"]["index"] == []
    (size,) = saved["figures"]["results"]
    assert size["n"] == 3000 and "fts" not in size
    assert size["bm25s"]["search"]["mean_hits"] > 0
    assert size["bm25s"]["search_filtered"]["mean_hits"] > 0  # filtered searches found chunks
    assert "bm25s_filtered_p50_vs_unfiltered_n3000" in saved["figures"]["ratios"]


def test_bench_service_scale_runs_with_real_questions(tmp_path):
    saved = run("bench_service_scale.py", tmp_path / "results", "--chunks", "2400",
                "--questions", "10", "--writes", "1", "--basis", str(tmp_path / "none.sqlite3"),
                "--workdir", str(tmp_path / "w"))
    assert saved["settings"]["chunks"] == 2400 and saved["settings"]["questions"] == 10
    result = saved["figures"]
    assert result["build"]["counts"]["chunks"] == 2400
    for start in ("serve", "restart"):
        s = result[start]
        assert s["questions"] == 10 and s["real_questions"] == 10 and s["real_p50_ms"] > 0
    assert result["restart"]["loaded_saved_base"] and not result["serve"]["loaded_saved_base"]
    assert "restart_ready_vs_cold_start" in result["ratios"]
