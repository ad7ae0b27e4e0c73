"""What every benchmark records beside its figures: the machine, the commit, the settings.

Each run writes ``benchmarks/results/<bench>.json``; ``benchmarks/report.py`` renders
docs/benchmarks.md from the latest of them. Figures are compared only as ratios against a
baseline measured in the same run (the machine is shared, so absolute times move).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DEV = ROOT / "eval" / "data" / "multihop-rag-dev"
# another folder for the results files (the smoke tests' runs must not replace the real
# ones); not RAG_*: `rag serve` warns about RAG_* variables that name no setting
RESULTS_ENV = "BENCH_RESULTS"


def results_dir() -> Path:
    """Where ``write_results`` writes: $BENCH_RESULTS if set, else benchmarks/results."""
    return Path(os.environ[RESULTS_ENV]) if os.environ.get(RESULTS_ENV) else RESULTS


def command(argv: list[str] | None = None) -> str:
    """The command line of this run, ``python benchmarks/bench_x.py ...`` (the script's path
    relative to the project when it is inside it)."""
    args = list(sys.argv if argv is None else argv)
    script = Path(args[0]).resolve()
    if script.is_relative_to(ROOT):
        args[0] = str(script.relative_to(ROOT))
    return " ".join(["python", *args])


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gb": memory_gb,
            "python": platform.python_version(), "system": platform.platform()}


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "rag", "benchmarks")
    return f"{head}{'+changes' if dirty else ''}"


def write_results(bench: str, figures: dict[str, Any], settings: dict[str, Any],
                  command: str) -> Path:
    """``benchmarks/results/<bench>.json`` (or under $BENCH_RESULTS): when, machine, commit,
    the command and settings of the run, and its figures (with their same-run ratios, under
    ``figures["ratios"]``)."""
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{bench}.json"
    path.write_text(json.dumps({
        "bench": bench, "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(), "commit": commit(), "command": command, "settings": settings,
        "figures": figures}, indent=2, default=str) + "\n")
    return path
