"""Document-level ranking metrics as BEIR reports them (pure functions).

BEIR scores with pytrec_eval, which wraps trec_eval; the definitions here are trec_eval's
(``ndcg_cut``, ``recall``, ``map_cut``) and BEIR's own MRR. ``ranked`` is a question's
documents best first, each once; ``qrels`` maps a document to its judged relevance (missing:
0); a document is relevant when that is above 0.

- nDCG@k: sum over ranks r <= k of relevance / log2(r + 1) (the gain is the relevance
  itself, not 2^rel - 1), divided by the same sum over the judged relevances sorted best
  first (0 when nothing is relevant);
- Recall@k: relevant documents in the top k / all relevant documents;
- MAP@k: the precision at the rank of each relevant document within the top k, summed and
  divided by the number of *all* relevant documents (not min(k, R));
- MRR@k: 1 / rank of the first relevant document within the top k, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


def documents(ids: Iterable[str]) -> list[str]:
    """Passages' document ids -> the documents, each at its best (first) rank."""
    return list(dict.fromkeys(ids))


def _relevant(qrels: Mapping[str, int]) -> int:
    return sum(1 for score in qrels.values() if score > 0)


def ndcg_at(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((s for s in qrels.values() if s > 0), reverse=True)[:k]
    idcg = sum(s / math.log2(i + 2) for i, s in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    wanted = _relevant(qrels)
    found = sum(1 for d in ranked[:k] if qrels.get(d, 0) > 0)
    return found / wanted if wanted else 0.0


def map_at(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    wanted = _relevant(qrels)
    found, total = 0, 0.0
    for i, d in enumerate(ranked[:k]):
        if qrels.get(d, 0) > 0:
            found += 1
            total += found / (i + 1)
    return total / wanted if wanted else 0.0


def mrr_at(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if qrels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0
