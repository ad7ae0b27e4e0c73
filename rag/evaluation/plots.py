"""report.png: the curves over k (left) and the main figures by question type (right).

Needs matplotlib (the ``eval`` extra); drawn with the Agg backend, no display."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.core.extras import need
from rag.evaluation.table import type_label

BAR_METRICS = ("hits@10", "mrr@10", "map@10", "all_evidence@10", "doc_ndcg@10",
               "doc_recall@10", "f1", "gold_in_answer")
MAX_BARS = 5  # metrics per type, the first of BAR_METRICS that apply


def plot(report: dict[str, Any], path: Path) -> None:
    matplotlib = need("matplotlib", "eval", "rag eval --out (the plots)")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, values in report["curves"].items():
        ks = list(range(1, len(values) + 1))
        left.plot(ks, values, marker="o", markersize=3, label=name.replace("_", " "))
    left.set(xlabel="k (passages)", ylabel="share of questions (mean)", ylim=(0, 1.02),
             title="Hits, evidence URLs and documents at k")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.grid(alpha=0.3)
    if report["curves"]:
        left.legend(fontsize=8)
    else:
        left.text(0.5, 0.5, "no ranked evidence in this gold set", ha="center",
                  transform=left.transAxes)
    types = list(report["by_type"])
    metrics = [m for m in BAR_METRICS
               if any(report["by_type"][t].get(m) is not None for t in types)][:MAX_BARS]
    width = 0.8 / max(len(metrics), 1)
    for i, m in enumerate(metrics):
        right.bar([x + i * width for x in range(len(types))],
                  [report["by_type"][t].get(m) or 0.0 for t in types], width, label=m)
    right.set_xticks([x + 0.4 - width / 2 for x in range(len(types))],
                     [type_label(t, 16) for t in types])
    right.set(ylim=(0, 1.02), title="By question type")
    if metrics:
        right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
