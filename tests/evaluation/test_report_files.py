"""The terminal table (100 columns, n/a) and the files of `rag eval --out`: report.json,
report.png and a self-contained report.html."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from types import SimpleNamespace

from rag.evaluation import evaluate as ev
from rag.evaluation import report as files
from rag.evaluation.table import WIDTH, table

FACT = "The bridge opened in 1932 after six years of work."


def report_of(types, question_text="Q?"):
    gold = [ev.GoldQuestion(str(i), f"{question_text} {i}", "1932", t, [FACT],
                            [f"https://news.example.com/{i}"]) for i, t in enumerate(types)]

    def ask(question, k):
        i = int(question.rsplit(" ", 1)[1])
        passages = [SimpleNamespace(rank=1, title="Other", url="https://other.example.com/x",
                                    text="Nothing <b>here</b>."),
                    SimpleNamespace(rank=2, title="Bridge", url=f"https://news.example.com/{i}",
                                    text=f"Intro. {FACT} More.")]
        return SimpleNamespace(passages=passages[i % 2:],
                               answer=SimpleNamespace(text=f"{FACT} [1]") if i % 2 else None)

    return ev.run(ask, gold)


def test_the_table_fits_100_columns_and_says_n_a():
    types = [f"a_rather_long_question_type_number_{i}" for i in range(9)]
    text = table(report_of(types))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    header = lines[0].split()
    assert header[0] == "all" and len(header) == 7 and header[1].endswith("…")
    assert lines[1].split() == ["questions", "9", *["1"] * 6]
    assert "3 more types in report.json" in text
    # no judged documents, no null questions: those figures do not apply
    assert not any(r.startswith("doc_") for r in lines)  # a family with nothing to show
    assert "null questions: 0, abstention n/a" in text
    hits = next(r for r in lines if r.startswith("hits@1 ")).split()
    assert hits[1] == f"{4 / 9:.4f}"  # questions 1, 3, 5, 7 have the fact at rank 1


class Attributes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action")]


def test_report_files_and_a_self_contained_page(tmp_path):
    report = report_of(["inference_query", "comparison_query"] * 3, "Which <bridge>?")
    report["settings"] = {"gold": "gold.jsonl", "format": "jsonl", "mode": "hybrid", "k": 10}
    paths = files.write(report, tmp_path / "out")
    assert [p.name for p in paths] == ["report.json", "report.png", "report.html"]
    assert json.loads(paths[0].read_text())["overall"]["hits@10"] == 1.0
    png = paths[1].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    html = paths[2].read_text()
    parsed = Attributes()
    parsed.feed(html)
    # nothing to fetch: no link, script or stylesheet, no URL in any attribute
    assert parsed.links and not [x for x in parsed.links if "http" in x.lower()]
    assert not {"link", "script", "iframe"} & parsed.tags
    assert "url(" not in html and "@import" not in html
    assert any(x.startswith("data:image/png;base64,") for x in parsed.links)
    # the summary table and the worst questions, escaped
    assert '<table id="summary">' in html and "<th>hits@10</th>" in html
    assert "<th>inference_query</th>" in html
    assert "Which &lt;bridge&gt;? 0" in html and "Nothing &lt;b&gt;here&lt;/b&gt;." in html
    assert "https://news.example.com/0" in html  # URLs shown as text
    assert html.count('class="question"') == 6
