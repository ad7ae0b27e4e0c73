"""Gold questions -> the retriever the API uses (in process or over HTTP) -> the metrics.

``run`` asks every question once, through any ``ask(question, k)`` whose result has
``.passages`` (``.text``, ``.url``) and ``.answer`` (``.text``) or None: ``Service.ask`` in
process, or ``rag.evaluation.remote.asker`` for a running server. Every metric at every cut-off
comes from that one ranked list of ``depth`` passages: at least ``CURVE_K``, and ``DOC_DEPTH``
when documents are judged (BEIR's Recall@100), less where the asker cannot give so many (a
server: ``remote.MAX_K``), and Recall@100 is then n/a.

Each question is scored by what its gold holds (``rag.evaluation.gold``):

- facts: MultiHop-RAG's Hits@K, MRR@10, MAP@10 (``metrics.paper_scores``) and hits at every
  k <= ``CURVE_K``;
- URLs: evidence-URL recall, all-evidence, and article@1 (the rank-1 passage's URL is a gold
  URL);
- judged documents: BEIR's nDCG@10, Recall@10, Recall@100, MAP@10, MRR@10 over documents, a
  document ranking where its best passage does (``ranking``); a passage's document is its
  BEIR id (``rag.ingest.sources.beir_id`` of its URL), else its URL;
- a gold answer: exact match and token F1 of the answer's best sentence, and gold-in-answer
  (``answers``).

A metric averages over the questions it applies to; where it applies to none it is None (n/a).
Null questions are scored only by abstention. ``table``, ``plot``, ``load_gold`` and
``GoldQuestion`` are re-exported from the modules that hold them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from rag.evaluation.answers import best_sentence_scores, gold_in_answer
from rag.evaluation.formats import load_gold
from rag.evaluation.gold import GoldQuestion
from rag.evaluation.metrics import all_evidence, hit_at, mean, paper_scores, percentile, url_recall
from rag.evaluation.plots import plot
from rag.evaluation.ranking import documents, map_at, mrr_at, ndcg_at, recall_at
from rag.evaluation.table import table
from rag.ingest.sources import beir_id

__all__ = ["CURVE_K", "DOC_DEPTH", "Ask", "GoldQuestion", "depth_for", "load_gold", "plot",
           "run", "score", "summarise", "table"]

CURVE_K = 20  # metrics are computed for every k in 1..CURVE_K from one ranked list
DOC_DEPTH = 100  # passages asked for when documents are judged (BEIR's Recall@100)
WORST = 10  # questions the report shows in full
SHOWN_PASSAGES = 3  # of each of those, with at most SHOWN_CHARS characters of each text
SHOWN_CHARS = 300

Ask = Callable[[str, int], Any]  # (question, k) -> Result with .passages and .answer

# report key -> (row key, index into that row value when it is a curve)
ROW_METRICS: tuple[tuple[str, str, int | None], ...] = (
    ("hits@1", "hits1", None), ("hits@3", "hits3", None), ("hits@4", "hits4", None),
    ("hits@10", "hits10", None), ("mrr@10", "mrr10", None), ("map@10", "map10", None),
    ("article@1", "article1", None), ("url_recall@4", "recall_curve", 3),
    ("url_recall@10", "recall_curve", 9), ("all_evidence@10", "all_curve", 9),
    ("doc_ndcg@10", "ndcg10", None), ("doc_recall@10", "doc_recall10", None),
    ("doc_recall@100", "doc_recall100", None), ("doc_map@10", "doc_map10", None),
    ("doc_mrr@10", "doc_mrr10", None),
    ("exact_match", "exact_match", None), ("f1", "f1", None),
    ("gold_in_answer", "answer_has_gold", None),
)
CURVES = (("hits", "hit_curve"), ("url_recall", "recall_curve"), ("all_evidence", "all_curve"),
          ("doc_ndcg", "ndcg_curve"), ("doc_recall", "doc_recall_curve"))
# the figure a question is ranked by in the report's worst list: the first it has
PRIMARY = (("doc_ndcg@10", "ndcg10"), ("mrr@10", "mrr10"), ("article@1", "article1"),
           ("f1", "f1"))


def depth_for(gold: list[GoldQuestion], k: int, max_depth: int | None = None) -> int:
    """Passages to ask for: ``max(k, CURVE_K)``, ``DOC_DEPTH`` with judged documents, at most
    ``max_depth``."""
    depth = max(k, CURVE_K, DOC_DEPTH if any(q.qrels for q in gold) else 0)
    return min(depth, max_depth) if max_depth else depth


def run(ask: Ask, gold: list[GoldQuestion], k: int = CURVE_K,
        progress: Callable[[int], None] | None = None,
        max_depth: int | None = None) -> dict[str, Any]:
    """Ask every question once (top ``depth_for(gold, k, max_depth)``) and score it;
    ``progress(1)`` after each."""
    depth = depth_for(gold, k, max_depth)
    rows: list[dict[str, Any]] = []
    for q in gold:
        started = time.perf_counter()
        result = ask(q.question, depth)
        rows.append(score(q, result, (time.perf_counter() - started) * 1000, depth))
        if progress:
            progress(1)
    return summarise(rows, k, depth)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def score(q: GoldQuestion, result: Any, ms: float, depth: int) -> dict[str, Any]:
    """One question's row: its figures, its curves over k = 1..CURVE_K, and (under
    ``_shown``) what the report shows of it."""
    texts = [p.text for p in result.passages]
    urls = [p.url for p in result.passages]
    answer = result.answer.text if result.answer else None
    row: dict[str, Any] = {"id": q.id, "type": q.qtype, "null": q.is_null, "ms": ms,
                           "answered": answer is not None}
    if q.is_null:
        return row
    ks = range(1, CURVE_K + 1)
    if q.facts:
        s = paper_scores(texts, q.facts)
        curve = [hit_at(texts, q.facts, i) for i in ks]
        row.update(hits1=curve[0], hits3=curve[2], hits4=s.hits4, hits10=s.hits10,
                   mrr10=s.mrr10, map10=s.map10, hit_curve=curve)
    if q.urls:
        row.update(article1=float(bool(urls) and urls[0] in set(q.urls)),
                   recall_curve=[url_recall(urls, q.urls, i) for i in ks],
                   all_curve=[all_evidence(urls, q.urls, i) for i in ks])
    if q.qrels:
        ranked = documents(beir_id(u) or u for u in urls)
        row.update(ndcg10=ndcg_at(ranked, q.qrels, 10), doc_recall10=recall_at(ranked, q.qrels, 10),
                   doc_map10=map_at(ranked, q.qrels, 10), doc_mrr10=mrr_at(ranked, q.qrels, 10),
                   ndcg_curve=[ndcg_at(ranked, q.qrels, i) for i in ks],
                   doc_recall_curve=[recall_at(ranked, q.qrels, i) for i in ks])
        if depth >= DOC_DEPTH:
            row["doc_recall100"] = recall_at(ranked, q.qrels, 100)
    if q.answer:
        em, f1 = best_sentence_scores(answer, q.answer)
        row.update(exact_match=em, f1=f1, answer_has_gold=bool(gold_in_answer(answer, q.answer)))
    row["_shown"] = {
        "question": q.question, "gold_answer": q.answer,
        "answer": _shorten(answer, 2 * SHOWN_CHARS) if answer else None,
        "passages": [{"rank": getattr(p, "rank", i), "title": getattr(p, "title", ""),
                      "url": p.url, "text": _shorten(p.text, SHOWN_CHARS)}
                     for i, p in enumerate(result.passages[:SHOWN_PASSAGES], start=1)],
        "evidence": [_shorten(f, SHOWN_CHARS) for f in q.facts[:5]],
        "urls": q.urls[:5], "notes": q.notes[:5]}
    return row


def _value(row: dict[str, Any], key: str, index: int | None) -> float:
    return float(row[key] if index is None else row[key][index])


def _block(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    metrics = [*ROW_METRICS, (f"url_recall@{k}", "recall_curve", k - 1)]
    block: dict[str, Any] = {"questions": len(rows)}
    for name, key, index in metrics:
        values = [_value(r, key, index) for r in rows if key in r]
        block[name] = mean(values) if values else None
    block["answered"] = mean([float(r["answered"]) for r in rows])
    return block


def _worst(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ranked = []
    for r in rows:
        for name, key in PRIMARY:
            if key in r:
                ranked.append((float(r[key]), name, r))
                break
    ranked.sort(key=lambda t: t[0])  # stable: ties keep the gold set's order
    return [{"id": r["id"], "type": r["type"], "metric": name, "value": value, **r["_shown"]}
            for value, name, r in ranked[:WORST]]


def summarise(rows: list[dict[str, Any]], k: int = 10, depth: int = CURVE_K) -> dict[str, Any]:
    k = min(k, CURVE_K)
    scored = [r for r in rows if not r["null"]]
    nulls = [r for r in rows if r["null"]]
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in scored:
        by_type[r["type"]].append(r)
    inference = [r for r in by_type.get("inference_query", []) if "answer_has_gold" in r]
    ms = [r["ms"] for r in rows]
    curves = {name: [mean([r[key][i] for r in scored if key in r]) for i in range(CURVE_K)]
              for name, key in CURVES if any(key in r for r in scored)}
    return {
        "overall": _block(scored, k) if scored else {},
        "by_type": {t: _block(rs, k) for t, rs in sorted(by_type.items())},
        "null": {"questions": len(nulls),
                 "abstention": mean([float(not r["answered"]) for r in nulls]) if nulls
                 else None},
        "answers": {"inference_gold_in_answer": mean([float(r["answer_has_gold"])
                                                     for r in inference]) if inference
                    else None,
                    "inference_questions": len(inference)},
        "curves": curves,
        "depth": depth,
        "latency_ms": {"p50": percentile(ms, 50), "p95": percentile(ms, 95),
                       "p99": percentile(ms, 99), "mean": mean(ms)},
        "worst": _worst(scored),
        "questions": [{key: v for key, v in r.items()
                       if not key.endswith("_curve") and not key.startswith("_")}
                      for r in rows],
    }
