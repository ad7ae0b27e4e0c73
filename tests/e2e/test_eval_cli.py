"""`rag eval` on the seed gold set: the table, report.json and the plot, with floors."""

from __future__ import annotations

import json
import subprocess

from conftest import RAG, ROOT


def test_cli_eval_on_the_seed_gold_set(seed_index, tmp_path):
    out = subprocess.run([*RAG, "eval", str(ROOT / "eval" / "seed_gold.jsonl"), "--index",
                          str(seed_index), "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "hits@10" in out.stdout and "null questions: 2" in out.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["overall"]["questions"] == 11
    # every seed question's evidence is the one seed article
    assert report["overall"]["url_recall@10"] == 1.0
    assert report["overall"]["hits@10"] >= 0.8
    # quality, not only counts: in id order the seed's chunks gave MRR@10 0.20
    assert report["overall"]["mrr@10"] >= 0.8 and report["null"]["abstention"] == 1.0
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
