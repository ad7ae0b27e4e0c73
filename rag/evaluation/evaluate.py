"""Gold question sets -> the same retriever the API uses -> metrics, report, table and plot.

Reads MultiHop-RAG's ``queries.json`` (``query``, ``answer``, ``question_type``,
``evidence_list[{url, fact}]``) and a simple JSONL gold format
(``{"question", "answer", "evidence": [{"url", "text"}]}``, optional ``type``/``id``).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.core.errors import RagError
from rag.evaluation.metrics import all_evidence, hit_at, mean, paper_scores, percentile, url_recall

CURVE_K = 20  # metrics are computed for every k in 1..CURVE_K from one ranked list


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answer: str
    qtype: str
    facts: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    @property
    def is_null(self) -> bool:
        return not self.facts and not self.urls


def load_gold(path: Path) -> list[GoldQuestion]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"{path}: cannot read gold set ({exc})") from None
    try:
        if Path(path).suffix.lower() in (".jsonl", ".ndjson"):
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RagError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(records, list) or not records:
        raise RagError(f"{path}: expected a non-empty list of questions")
    out = []
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not isinstance(r.get("query", r.get("question")), str):
            raise RagError(f"{path}: question {i} has no 'question' (or 'query') text")
        evidence = r.get("evidence_list", r.get("evidence")) or []
        facts = [e.get("fact", e.get("text")) for e in evidence if e.get("fact", e.get("text"))]
        out.append(GoldQuestion(
            id=str(r.get("id", i)), question=str(r.get("query", r.get("question"))),
            answer=str(r.get("answer") or ""),
            qtype=r.get("question_type", r.get("type")) or ("null_query" if not evidence
                                                            else "question"),
            facts=facts, urls=[e["url"] for e in evidence if e.get("url")]))
    return out


Ask = Callable[[str, int], Any]  # (question, k) -> Result with .passages and .answer


def run(ask: Ask, gold: list[GoldQuestion], k: int = CURVE_K,
        progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Ask every question once (top ``max(k, CURVE_K)``) and score it."""
    depth = max(k, CURVE_K)
    rows: list[dict[str, Any]] = []
    for q in gold:
        started = time.perf_counter()
        result = ask(q.question, depth)
        elapsed = (time.perf_counter() - started) * 1000
        texts = [p.text for p in result.passages]
        urls = [p.url for p in result.passages]
        answer = result.answer.text if result.answer else None
        row: dict[str, Any] = {"id": q.id, "type": q.qtype, "null": q.is_null, "ms": elapsed,
                               "answered": answer is not None}
        if not q.is_null:
            s = paper_scores(texts, q.facts)
            row.update(hits4=s.hits4, hits10=s.hits10, mrr10=s.mrr10, map10=s.map10,
                       hit_curve=[hit_at(texts, q.facts, i) for i in range(1, CURVE_K + 1)],
                       recall_curve=[url_recall(urls, q.urls, i) for i in range(1, CURVE_K + 1)],
                       all_curve=[all_evidence(urls, q.urls, i) for i in range(1, CURVE_K + 1)],
                       answer_has_gold=bool(answer and q.answer
                                            and q.answer.lower() in answer.lower()))
        rows.append(row)
        if progress:
            progress(1)
    return summarise(rows, k)


def _block(rows: list[dict[str, Any]], k: int) -> dict[str, float]:
    return {
        "questions": len(rows),
        "hits@4": mean([r["hits4"] for r in rows]),
        "hits@10": mean([r["hits10"] for r in rows]),
        "mrr@10": mean([r["mrr10"] for r in rows]),
        "map@10": mean([r["map10"] for r in rows]),
        "url_recall@4": mean([r["recall_curve"][3] for r in rows]),
        "url_recall@10": mean([r["recall_curve"][9] for r in rows]),
        f"url_recall@{k}": mean([r["recall_curve"][k - 1] for r in rows]),
        "all_evidence@10": mean([r["all_curve"][9] for r in rows]),
        "answered": mean([float(r["answered"]) for r in rows]),
    }


def summarise(rows: list[dict[str, Any]], k: int = 10) -> dict[str, Any]:
    k = min(k, CURVE_K)
    scored = [r for r in rows if not r["null"]]
    nulls = [r for r in rows if r["null"]]
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in scored:
        by_type[r["type"]].append(r)
    inference = by_type.get("inference_query", [])
    ms = [r["ms"] for r in rows]
    return {
        "overall": _block(scored, k) if scored else {},
        "by_type": {t: _block(rs, k) for t, rs in sorted(by_type.items())},
        "null": {"questions": len(nulls),
                 "abstention": mean([float(not r["answered"]) for r in nulls])},
        "answers": {"inference_gold_in_answer": mean([float(r["answer_has_gold"])
                                                     for r in inference]),
                    "inference_questions": len(inference)},
        "curves": {name: [mean([r[key][i] for r in scored]) for i in range(CURVE_K)]
                   for name, key in (("hits", "hit_curve"), ("url_recall", "recall_curve"),
                                     ("all_evidence", "all_curve"))} if scored else {},
        "latency_ms": {"p50": percentile(ms, 50), "p95": percentile(ms, 95),
                       "p99": percentile(ms, 99), "mean": mean(ms)},
        "questions": [{key: v for key, v in r.items() if not key.endswith("_curve")}
                      for r in rows],
    }


def table(report: dict[str, Any]) -> str:
    cols = ["questions", "hits@4", "hits@10", "mrr@10", "map@10", "url_recall@4",
            "url_recall@10", "all_evidence@10", "answered"]
    lines = [f"{'':<20}" + "".join(f"{c:>16}" for c in cols)]
    blocks = [("all (non-null)", report["overall"]), *report["by_type"].items()]
    for name, block in blocks:
        if block:
            lines.append(f"{name:<20}" + "".join(
                f"{block[c]:>16d}" if c == "questions" else f"{block[c]:>16.4f}" for c in cols))
    null, ans, lat = report["null"], report["answers"], report["latency_ms"]
    lines.append(f"null questions: {null['questions']}, abstention {null['abstention']:.4f}")
    lines.append(f"inference answers containing the gold answer: "
                 f"{ans['inference_gold_in_answer']:.4f} of {ans['inference_questions']}")
    lines.append(f"latency per question: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
                 f"p99 {lat['p99']:.1f} ms")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    ks = list(range(1, CURVE_K + 1))
    for name, values in report["curves"].items():
        left.plot(ks, values, marker="o", markersize=3, label=name.replace("_", " "))
    left.set(xlabel="k (passages)", ylabel="share of questions", ylim=(0, 1.02),
             title="Hits / evidence-URL recall / all-evidence at k")
    left.grid(alpha=0.3)
    left.legend()
    types = list(report["by_type"])
    metrics = ["hits@10", "mrr@10", "map@10", "all_evidence@10"]
    width = 0.8 / len(metrics)
    for i, m in enumerate(metrics):
        right.bar([x + i * width for x in range(len(types))],
                  [report["by_type"][t][m] for t in types], width, label=m)
    right.set_xticks([x + 0.4 - width / 2 for x in range(len(types))],
                     [t.replace("_query", "") for t in types])
    right.set(ylim=(0, 1.02), title="By question type")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
