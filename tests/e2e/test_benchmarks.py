"""The scale benchmarks still run end to end, at a toy size (their figures are not checked:
timings belong in the benchmarks, not in tests). bench_scale.py's keyword part had stopped
running unnoticed when the keyword index grew its common-term statistics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

EVAL = ROOT / "eval"


def run(script: str, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(EVAL / script), *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_bench_scale_keyword_layers_run(tmp_path):
    out = tmp_path / "scale.json"
    run("bench_scale.py", "--sizes", "3000", "--keyword-only", "--queries", "20",
        "--basis", str(tmp_path / "none.sqlite3"), "--workdir", str(tmp_path / "w"),
        "--json", str(out))
    (size,) = json.loads(out.read_text())["results"]
    assert size["n"] == 3000
    assert size["fts"]["bm25"]["mean_hits"] > 0 and size["bm25s"]["search"]["mean_hits"] > 0
    assert size["bm25s"]["search_filtered"]["mean_hits"] > 0  # filtered searches found chunks


def test_bench_service_scale_runs_with_real_questions(tmp_path):
    out = tmp_path / "service.json"
    run("bench_service_scale.py", "--chunks", "2400", "--questions", "10", "--writes", "1",
        "--basis", str(tmp_path / "none.sqlite3"), "--workdir", str(tmp_path / "w"),
        "--json", str(out))
    result = json.loads(out.read_text())
    assert result["build"]["counts"]["chunks"] == 2400
    for start in ("serve", "restart"):
        s = result[start]
        assert s["questions"] == 10 and s["real_questions"] == 10 and s["real_p50_ms"] > 0
    assert result["restart"]["loaded_saved_base"] and not result["serve"]["loaded_saved_base"]
