"""The metrics table of a report: metrics as rows; all non-null questions, then each question
type, as columns. The terminal form fits ``WIDTH`` columns (types past the first
``MAX_TYPES`` are left to report.json, long type names are cut) and prints "n/a" where a
metric does not apply; a family of metrics the gold set has nothing for at all (document
judgments in a MultiHop set, facts in a BEIR set) is left out."""

from __future__ import annotations

from typing import Any

WIDTH = 100
LABEL = 17
COLUMN = 11
MAX_TYPES = (WIDTH - LABEL) // COLUMN - 1  # beside the "all" column

METRICS = ("questions", "hits@1", "hits@3", "hits@4", "hits@10", "mrr@10", "map@10",
           "article@1", "url_recall@4", "url_recall@10", "all_evidence@10", "doc_ndcg@10",
           "doc_recall@10", "doc_recall@100", "doc_map@10", "doc_mrr@10", "answered",
           "exact_match", "f1", "gold_in_answer")


# metrics that apply, or not, together: (a prefix or name, ...) per family
FAMILIES = (("hits@", "mrr@", "map@"), ("article@", "url_recall@", "all_evidence@"),
            ("doc_",), ("exact_match", "f1", "gold_in_answer"))


def family(metric: str) -> tuple[str, ...] | None:
    return next((f for f in FAMILIES if metric.startswith(f)), None)


def type_label(name: str, width: int = COLUMN - 1) -> str:
    """A question type as a column header: MultiHop's ``_query`` suffix dropped, cut to
    ``width`` characters."""
    name = name.removesuffix("_query")
    return name if len(name) <= width else name[: width - 1] + "…"


def cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}"


def metric_names(report: dict[str, Any]) -> list[str]:
    """``METRICS`` and any other figure the blocks hold (``url_recall@k`` for another k)."""
    names = list(METRICS)
    for block in [report["overall"], *report["by_type"].values()]:
        names += [name for name in block if name not in names]
    return names


def columns(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("all", report["overall"]), *report["by_type"].items()]


def notes(report: dict[str, Any]) -> list[str]:
    """The lines under the table: null questions, answers, depth, latency."""
    null, answers, lat = report["null"], report["answers"], report["latency_ms"]
    lines = [f"null questions: {null['questions']}, abstention {cell(null['abstention'])}"]
    if answers["inference_questions"]:
        lines.append(f"inference answers containing the gold answer: "
                     f"{cell(answers['inference_gold_in_answer'])} of "
                     f"{answers['inference_questions']}")
    depth = report.get("depth")
    if depth is not None:
        line = f"passages asked per question: {depth}"
        if report["overall"].get("doc_ndcg@10") is not None and depth < 100:
            line += " (so doc_recall@100 is n/a)"
        lines.append(line)
    lines.append(f"latency per question: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
                 f"p99 {lat['p99']:.1f} ms")
    return lines


def table(report: dict[str, Any]) -> str:
    cols = columns(report)
    shown, hidden = cols[: MAX_TYPES + 1], cols[MAX_TYPES + 1:]
    lines = []
    if report["overall"]:
        lines.append(f"{'':<{LABEL}}" + "".join(f"{type_label(name):>{COLUMN}}"
                                                for name, _ in shown))
        names = metric_names(report)
        empty = {f for f in FAMILIES if all(
            block.get(m) is None for m in names if family(m) == f for _, block in shown)}
        for metric in names:
            if family(metric) in empty:
                continue
            lines.append(f"{metric[:LABEL - 1]:<{LABEL}}" + "".join(
                f"{cell(block.get(metric)):>{COLUMN}}" for _, block in shown))
    if hidden:
        more = f"{len(hidden)} more types in report.json: " + ", ".join(n for n, _ in hidden)
        lines.append(more if len(more) <= WIDTH else more[: WIDTH - 1] + "…")
    lines.extend(notes(report))
    return "\n".join(lines)
