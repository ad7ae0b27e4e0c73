"""A report's files: report.json (every figure, per type, the curves and one row per
question), report.png (the plot) and report.html (the page that embeds it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.evaluation.page import page
from rag.evaluation.plots import plot

FILES = ("report.json", "report.png", "report.html")


def write(report: dict[str, Any], out: Path) -> list[Path]:
    """Write the three files into ``out`` (created if need be); their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path, html_path = (out / name for name in FILES)
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    plot(report, png_path)
    html_path.write_text(page(report, png_path.read_bytes()), encoding="utf-8")
    return [json_path, png_path, html_path]
