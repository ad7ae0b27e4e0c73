"""Retrieval metrics, reproducing MultiHop-RAG's scoring protocol exactly (pure functions).

A passage is a *hit* when some gold fact is a substring of it after every space and newline is
removed from both (upstream ``retrieval_evaluate.py``). Facts are kept as a list: duplicates
count in the MAP denominator ``min(len(facts), 10)``, as upstream does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def squash(text: str) -> str:
    return text.replace(" ", "").replace("\n", "")


@dataclass(frozen=True)
class PaperScores:
    hits4: float
    hits10: float
    mrr10: float
    map10: float


def paper_scores(passages: Sequence[str], facts: Sequence[str]) -> PaperScores:
    """Hits@4, Hits@10, MRR@10 and MAP@10 of one question (0/1 for the hits)."""
    gold = [squash(f) for f in facts]
    found: list[str] = []
    first: int | None = None
    ap = 0.0
    for rank, passage in enumerate(passages[:10], start=1):
        text = squash(passage)
        if not any(g in text for g in gold):
            continue
        if first is None:
            first = rank
        new = 0
        for g in gold:
            if g in text and g not in found:
                new += 1
                found.append(g)
        ap += new / rank
    return PaperScores(
        hits4=float(first is not None and first <= 4),
        hits10=float(first is not None),
        mrr10=1.0 / first if first else 0.0,
        map10=ap / min(len(gold), 10) if gold else 0.0,
    )


def hit_at(passages: Sequence[str], facts: Sequence[str], k: int) -> float:
    gold = [squash(f) for f in facts]
    return float(any(g in squash(p) for p in passages[:k] for g in gold))


def url_recall(urls: Sequence[str], gold_urls: Sequence[str], k: int) -> float:
    """Share of the question's distinct gold URLs among the top-``k`` passages' URLs."""
    wanted = set(gold_urls)
    if not wanted:
        return 0.0
    return len(wanted & set(urls[:k])) / len(wanted)


def all_evidence(urls: Sequence[str], gold_urls: Sequence[str], k: int) -> float:
    wanted = set(gold_urls)
    return float(bool(wanted) and wanted <= set(urls[:k]))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
