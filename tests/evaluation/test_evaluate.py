"""`rag eval`: both gold formats, the report, the table and the plot."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from rag.core.errors import RagError
from rag.evaluation import evaluate as ev

from conftest import DEV


def test_loads_multihop_format():
    gold = ev.load_gold(DEV / "queries.json")
    assert len(gold) == 1689
    assert sum(q.is_null for q in gold) == 202
    first = gold[0]
    assert first.qtype == "inference_query" and first.answer == "Sam Bankman-Fried"
    assert len(first.facts) == len(first.urls) == 3


def test_loads_jsonl_format(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"question": "Q?", "answer": "A",
                                "evidence": [{"url": "https://x.com", "text": "Fact."}]}) + "\n"
                    + json.dumps({"question": "Nothing?", "answer": "", "evidence": []}) + "\n")
    a, b = ev.load_gold(path)
    assert a.facts == ["Fact."] and a.urls == ["https://x.com"] and not a.is_null
    assert b.is_null and b.qtype == "null_query"


@pytest.mark.parametrize("content", ["{", "[]", '[{"answer": "no question"}]'])
def test_bad_gold_files(tmp_path, content):
    path = tmp_path / "gold.json"
    path.write_text(content)
    with pytest.raises(RagError, match="gold.json"):
        ev.load_gold(path)


def fake_result(texts, urls, answer=None):
    passages = [SimpleNamespace(text=t, url=u) for t, u in zip(texts, urls, strict=True)]
    return SimpleNamespace(passages=passages,
                           answer=SimpleNamespace(text=answer) if answer else None)


def test_run_scores_by_hand():
    gold = [ev.GoldQuestion("1", "q1", "Ann", "inference_query", ["Fact A.", "Fact B."],
                            ["u1", "u2"]),
            ev.GoldQuestion("2", "q2", "", "null_query")]
    results = {"q1": fake_result(["x", "Fact A. more", "Fact B."], ["u3", "u1", "u2"],
                                 answer="It was Ann [2]."),
               "q2": fake_result(["x"], ["u9"])}
    report = ev.run(lambda q, k: results[q], gold)
    o = report["overall"]
    assert o["hits@4"] == 1.0 and o["mrr@10"] == 0.5
    assert o["map@10"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert o["url_recall@4"] == 1.0 and o["all_evidence@10"] == 1.0
    assert report["curves"]["hits"][:3] == [0.0, 1.0, 1.0]
    assert report["curves"]["all_evidence"][:3] == [0.0, 0.0, 1.0]
    assert report["null"] == {"questions": 1, "abstention": 1.0}
    assert report["answers"]["inference_gold_in_answer"] == 1.0
    assert (o["hits@1"], o["hits@3"], o["article@1"]) == (0.0, 1.0, 0.0)
    # the answer's one sentence "It was Ann." against "Ann": 1 of 3 tokens shared
    assert (o["exact_match"], o["f1"], o["gold_in_answer"]) == (0.0, 0.5, 1.0)
    assert o["doc_ndcg@10"] is None  # no judged documents in this gold
    assert [w["id"] for w in report["worst"]] == ["1"]  # null questions are not listed
    header, *rows = ev.table(report).splitlines()
    assert header.split() == ["all", "inference"]
    assert next(r for r in rows if r.startswith("article@1")).split()[1:] == ["0.0000"] * 2
