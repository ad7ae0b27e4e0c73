"""Answer metrics on hand-computed cases: SQuAD normalisation, EM, token F1, best sentence."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rag.evaluation import evaluate as ev
from rag.evaluation.answers import (
    answer_sentences,
    best_sentence_scores,
    exact_match,
    gold_in_answer,
    normalize,
    token_f1,
)


def test_squad_normalisation():
    assert normalize("The Cat, a hat... and AN apple!") == "cat hat and apple"
    assert normalize("  Theatre  anthem ") == "theatre anthem"  # articles as whole words only


def test_exact_match_and_token_f1():
    assert exact_match("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert exact_match("Eiffel Tower, Paris", "Eiffel tower") == 0.0
    # prediction: paris is capital of france (5 tokens); gold: capital paris (2); 2 shared
    assert token_f1("Paris is the capital of France", "the capital, Paris") == \
        pytest.approx(2 * (2 / 5) * 1 / (2 / 5 + 1))
    assert token_f1("nothing shared", "Paris") == 0.0
    # repeated tokens count as often as both sides have them
    assert token_f1("ann ann lee", "ann lee lee") == pytest.approx(2 / 3)


def test_best_sentence_of_a_cited_answer():
    answer = "It rained all day in the city. [1] The winner was Ann Lee. [2][3]"
    assert answer_sentences(answer) == ["It rained all day in the city.",
                                        "The winner was Ann Lee."]
    em, f1 = best_sentence_scores(answer, "Ann Lee")
    # best sentence: winner was ann lee (4 tokens) vs ann lee: P 1/2, R 1
    assert em == 0.0 and f1 == pytest.approx(2 / 3)
    assert best_sentence_scores("Ann Lee. [4] Something else entirely. [1]", "ann lee") == \
        (1.0, 1.0)
    assert best_sentence_scores(None, "Ann Lee") == (0.0, 0.0)


def test_gold_in_answer():
    assert gold_in_answer("The winner was ANN LEE [2].", "Ann Lee") == 1.0
    assert gold_in_answer("The winner was Ann.", "Ann Lee") == 0.0
    assert gold_in_answer(None, "Ann Lee") == 0.0 and gold_in_answer("x", "") == 0.0


def test_answer_metrics_overall_and_by_type():
    gold = [ev.GoldQuestion("1", "q1", "Ann Lee", "who"),
            ev.GoldQuestion("2", "q2", "Paris", "where"),
            ev.GoldQuestion("3", "q3", "Insufficient information.", "null_query")]

    def ask(question, k):
        text = {"q1": "The winner was Ann Lee. [1]", "q2": "Paris. [1]", "q3": None}[question]
        return SimpleNamespace(passages=[], answer=SimpleNamespace(text=text) if text else None)

    # q1 and q2 have gold answers but no evidence: answerable only if said so
    gold[:2] = [ev.GoldQuestion(q.id, q.question, q.answer, q.qtype, answerable=True)
                for q in gold[:2]]
    report = ev.run(ask, gold)
    o = report["overall"]
    assert o["questions"] == 2
    assert o["exact_match"] == pytest.approx(0.5) and o["f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert o["gold_in_answer"] == 1.0
    assert report["by_type"]["who"]["f1"] == pytest.approx(2 / 3)
    assert report["by_type"]["where"]["exact_match"] == 1.0
    assert o["hits@10"] is None and o["doc_ndcg@10"] is None  # no evidence to rank
    assert report["null"] == {"questions": 1, "abstention": 1.0}  # null: not answer-scored
