"""report.html: one self-contained page a person reads (no external URL: inline CSS, the plot
as a base64 data URI, source URLs shown as text, never as links or resources).

It holds the run's settings, the summary table (every type), the notes under it, the plot
(curves over k, bars by type), the worst questions with their top passages and gold evidence,
and what each metric means."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from rag.evaluation.table import cell, columns, metric_names, notes

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #888; }
td.na { color: #999; }
img { max-width: 100%; border: 1px solid #ddd; }
.meta { color: #555; }
.question { border: 1px solid #ddd; border-radius: 6px; padding: .5rem 1rem;
            margin: 1rem 0; }
.question h3 { font-size: 1rem; margin: .3rem 0; }
.passage, .evidence { font-size: .9rem; margin: .3rem 0; }
.url { font-family: ui-monospace, monospace; font-size: .8rem; color: #555;
       word-break: break-all; }
dt { font-weight: 600; }
"""

DEFINITIONS = (
    ("hits@k", "a passage in the top k holds a gold fact (spaces and newlines ignored); "
               "MultiHop-RAG's protocol, as are mrr@10 and map@10"),
    ("article@1", "the rank-1 passage comes from a gold article (its URL is a gold URL)"),
    ("url_recall@k, all_evidence@10", "share of a question's gold URLs among the top k "
                                      "passages' URLs; all of them in the top 10"),
    ("doc_*", "BEIR's document-level nDCG@10, Recall@10/100, MAP@10, MRR@10 (trec_eval's "
              "definitions), a document ranking where its best passage does"),
    ("exact_match, f1", "SQuAD v1.1 exact match and token F1 of the answer's best sentence "
                        "against the gold answer"),
    ("gold_in_answer", "the gold answer appears (case-insensitively) in the answer text"),
    ("answered", "share of non-null questions given an answer"),
    ("n/a", "the metric does not apply to any of these questions"),
)


def _summary(report: dict[str, Any]) -> str:
    cols = columns(report)
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in cols)
    rows = []
    for metric in metric_names(report):
        cells = []
        for _, block in cols:
            text = cell(block.get(metric))
            cells.append(f'<td class="na">{text}</td>' if text == "n/a" else f"<td>{text}</td>")
        rows.append(f"<tr><th>{escape(metric)}</th>{''.join(cells)}</tr>")
    return (f'<table id="summary"><thead><tr><th>metric</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _worst(entry: dict[str, Any]) -> str:
    value = entry["value"]
    parts = [f'<section class="question"><h3>{escape(str(entry["id"]))} · '
             f'{escape(entry["type"])} · {escape(entry["metric"])} {value:.4f}</h3>',
             f"<p><b>Q:</b> {escape(entry['question'])}</p>"]
    if entry.get("gold_answer"):
        parts.append(f"<p><b>Gold answer:</b> {escape(entry['gold_answer'])}</p>")
    answer = entry.get("answer")
    parts.append(f"<p><b>Answer:</b> {escape(answer) if answer else '<i>none</i>'}</p>")
    parts.append("<p><b>Top passages</b></p><ol>")
    for p in entry["passages"]:
        parts.append(f'<li class="passage"><b>{escape(p["title"] or "(untitled)")}</b> '
                     f'<span class="url">{escape(p["url"])}</span><br>{escape(p["text"])}</li>')
    parts.append("</ol><p><b>Gold evidence</b></p><ul>")
    for fact in entry.get("evidence", []):
        parts.append(f'<li class="evidence">{escape(fact)}</li>')
    for note in entry.get("notes", []):
        parts.append(f'<li class="evidence">{escape(note)}</li>')
    for url in entry.get("urls", []):
        parts.append(f'<li class="evidence url">{escape(url)}</li>')
    parts.append("</ul></section>")
    return "".join(parts)


def page(report: dict[str, Any], png: bytes | None = None) -> str:
    settings = report.get("settings", {})
    about = ", ".join(f"{key} {escape(str(settings[key]))}" for key in
                      ("gold", "format", "url", "index_dir", "mode", "k", "model")
                      if settings.get(key) is not None)
    plot = (f'<img alt="curves over k and figures by question type" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            if png else "<p>(no plot)</p>")
    worst = "".join(_worst(e) for e in report.get("worst", [])) or "<p>none</p>"
    definitions = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>"
                          for term, text in DEFINITIONS)
    lines = "".join(f"<li>{escape(line)}</li>" for line in notes(report))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rag eval report</title><style>{STYLE}</style></head>
<body>
<h1>Evaluation report</h1>
<p class="meta">{about}</p>
<h2>Summary</h2>
{_summary(report) if report["overall"] else "<p>no answerable questions</p>"}
<ul>{lines}</ul>
<h2>Curves over k and figures by type</h2>
{plot}
<h2>The {len(report.get("worst", []))} worst questions</h2>
{worst}
<h2>Metrics</h2>
<dl>{definitions}</dl>
</body></html>
"""
