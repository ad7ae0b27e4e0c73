"""Fusing rankings, and spreading the result over articles (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rag.index.base import Ranking


def rrf(rankings: list[tuple[Ranking, float]], k: int = 60) -> Ranking:
    """Weighted reciprocal rank fusion: sum of weight / (k + rank) over the rankings, best
    first (ties: lower item first). In numpy, with the same float64 sums in the same order as
    a loop over the rankings (``np.bincount`` adds in input order), so bit for bit those of
    the loop it replaced, at ~0.6x its time (~15 rankings of 100 a question)."""
    return _summed(rankings, lambda ranking, weight:
                   weight / (k + np.arange(1, len(ranking) + 1, dtype=np.float64)))


def zsum(rankings: list[tuple[Ranking, float]]) -> Ranking:
    """Weighted sum of standardised scores, best first (ties: lower item first). Each
    ranking's scores become ``(score - lowest) / standard deviation`` over its own list: an
    item counts by how far it stands out from the rest of that list, in the list's own
    spread; the list's last item adds 0, as an item the list lacks does, and a list without
    spread (one item, equal scores) adds 0 throughout. Unlike ``rrf`` it keeps the margins: a
    passage far ahead in one ranking can stay ahead of one barely ahead in two."""
    return _summed(rankings, _standardised)


def _standardised(ranking: Ranking, weight: float) -> np.ndarray:
    scores = np.fromiter((score for _, score in ranking), np.float64, len(ranking))
    spread = scores.std()
    return weight * (scores - scores.min()) / spread if spread > 0 else np.zeros(len(ranking))


def _summed(rankings: list[tuple[Ranking, float]],
            shares_of: Callable[[Ranking, float], np.ndarray]) -> Ranking:
    """Each item's sum of its shares (``shares_of`` a ranking and its weight, one per
    position) over the rankings, best first, ties by lower item."""
    items, shares = [], []
    for ranking, weight in rankings:
        if ranking:
            items.append(np.fromiter((item for item, _ in ranking), np.int64, len(ranking)))
            shares.append(shares_of(ranking, weight))
    if not items:
        return []
    ids, where = np.unique(np.concatenate(items), return_inverse=True)
    sums = np.bincount(where, weights=np.concatenate(shares), minlength=len(ids))
    order = np.lexsort((ids, -sums))
    return list(zip(ids[order].tolist(), sums[order].tolist(), strict=True))


def diversify(ranked: Ranking, group: dict[int, str], decay: float = 1.0,
              cap: int = 0) -> Ranking:
    """Spread the results over articles: an article's n-th chunk (n = 0 for its best) ranks by
    its score times ``decay ** n`` (a score <= 0 is divided instead, so it moves down too), and
    past ``cap`` chunks per article (0 = no cap) the rest go to the end, in order. Scores are
    kept as they were; ``decay`` 1 and ``cap`` 0 keep the ranking."""
    seen: dict[str, int] = {}
    keys: list[tuple[bool, float, int]] = []
    for pos, (item, score) in enumerate(ranked):
        g = group.get(item, "")
        n = seen.get(g, 0)
        seen[g] = n + 1
        keys.append((cap > 0 and n >= cap, -_discounted(score, decay ** n), pos))
    keys.sort()
    return [ranked[pos] for _, _, pos in keys]


def _discounted(score: float, factor: float) -> float:
    if factor == 0:  # decay 0: after every article's best chunk, in their order
        return -math.inf
    return score * factor if score > 0 else score / factor  # either way, lower
