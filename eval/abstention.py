"""The answer/abstain trade-off behind rag.retrieval.answer's threshold, as a curve.

    python eval/abstention.py --index /tmp/dev-and-seeds --out eval/abstention.png

For every question of the MultiHop-RAG dev split (both halves: even and odd positions) and of
the factoid set, the support score that decides whether an answer is given (``support``:
nearest-chunk cosine + name coverage + one-sentence coverage of the question's words). Swept
over thresholds: the share of answerable questions answered against the share of null
questions refused. Prints the figures at the chosen threshold and draws the curves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rag.core.config import Settings
from rag.evaluation import evaluate as ev
from rag.retrieval.answer import ANSWER_PASSAGES, SUPPORT_THRESHOLD, support
from rag.service import Service

HERE = Path(__file__).parent
MULTIHOP = HERE / "data" / "multihop-rag-dev" / "queries.json"
FACTOID = HERE / "data" / "factoid-dev.jsonl"


def scores(svc: Service, gold: list[ev.GoldQuestion]) -> list[tuple[bool, float]]:
    """(is null, support score) for each question, as Service.ask computes it."""
    out = []
    sources = svc.index.sources()
    for g in gold:
        ranked = svc.retriever.rank(g.question)
        top = svc.retriever.passages(g.question, ranked.ranking[:ANSWER_PASSAGES])
        out.append((g.is_null, support(g.question, top, ranked.nearest or 0.0, sources)))
    return out


def at(rows: list[tuple[bool, float]], t: float) -> tuple[float, float]:
    """(answered share of answerable questions, refused share of null questions)."""
    answerable = [s for null, s in rows if not null]
    null = [s for is_null, s in rows if is_null]
    answered = float(np.mean([s >= t for s in answerable]))
    refused = float(np.mean([s < t for s in null])) if null else float("nan")
    return answered, refused


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=HERE / "abstention.png")
    args = ap.parse_args()
    svc = Service.open(Settings(index_dir=args.index))
    multihop = scores(svc, ev.load_gold(MULTIHOP))
    sets = {"dev split, half A": multihop[0::2], "dev split, half B": multihop[1::2],
            "dev split": multihop, "factoid set": scores(svc, ev.load_gold(FACTOID))}
    for name, rows in sets.items():
        answered, refused = at(rows, SUPPORT_THRESHOLD)
        print(f"{name:<20} threshold {SUPPORT_THRESHOLD}: answered {answered:.4f}, "
              f"null refused {refused:.4f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds = np.arange(0.3, 1.2, 0.005)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name in ("dev split, half A", "dev split, half B"):
        points = [at(sets[name], t) for t in thresholds]
        ax.plot([a for a, _ in points], [r for _, r in points], label=name)
        a, r = at(sets[name], SUPPORT_THRESHOLD)
        ax.plot([a], [r], "ko")
    factoid = at(sets["factoid set"], SUPPORT_THRESHOLD)[0]
    ax.axvline(factoid, color="grey", linestyle=":",
               label=f"factoid set answered at the threshold ({factoid:.2f})")
    ax.set(xlabel="answerable questions answered", ylabel="null questions refused",
           title=f"Answer or abstain (dots: threshold {SUPPORT_THRESHOLD})",
           xlim=(0.8, 1.0), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
