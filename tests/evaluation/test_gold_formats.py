"""Gold formats chosen by content: MultiHop-RAG, the simple JSONL, Ragas; one-line errors."""

from __future__ import annotations

import json

import pytest

from rag.core.errors import RagError
from rag.evaluation import formats

from conftest import DEV, ROOT


def write_lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_the_shipped_gold_sets_keep_their_formats():
    assert formats.load(DEV / "queries.json").format == "multihop"
    seed = formats.load(ROOT / "eval" / "seed_gold.jsonl")
    assert seed.format == "jsonl" and len(seed.questions) == 13
    factoid = formats.load(ROOT / "eval" / "data" / "factoid-dev.jsonl")
    assert factoid.format == "jsonl"
    assert {q.qtype for q in factoid.questions} == {"natural", "keyword"}


def test_ragas_samples(tmp_path):
    path = write_lines(tmp_path / "ragas.jsonl", [
        {"user_input": "What is the capital of France?", "reference": "Paris",
         "reference_contexts": ["Paris is the capital of France."],
         "retrieved_contexts": ["ignored: what some system retrieved"],
         "synthesizer_name": "single_hop_specific_query_synthesizer"},
        {"user_input": "Who wrote Hamlet?", "reference": "Shakespeare"},
    ])
    gold = formats.load(path)
    assert gold.format == "ragas"
    a, b = gold.questions
    assert (a.id, a.question, a.answer) == ("0", "What is the capital of France?", "Paris")
    assert a.facts == ["Paris is the capital of France."] and a.urls == []
    assert a.qtype == "single_hop_specific_query_synthesizer" and not a.is_null
    assert b.facts == [] and b.qtype == "question"
    assert not b.is_null  # no contexts, but a reference answer: answer metrics only


def test_ragas_legacy_names_and_columns(tmp_path):
    legacy = write_lines(tmp_path / "v1.jsonl", [
        {"question": "Q1?", "ground_truth": "A1", "contexts": ["C1"], "id": "x"}])
    [q] = formats.load_gold(legacy)
    assert (q.id, q.question, q.answer, q.facts) == ("x", "Q1?", "A1", ["C1"])
    # a JSON object of columns (a dataset's to_dict()) is read row by row
    columns = tmp_path / "columns.json"
    columns.write_text(json.dumps({"user_input": ["Q1?", "Q2?"], "reference": ["A1", "A2"]}))
    assert [q.answer for q in formats.load_gold(columns)] == ["A1", "A2"]


def test_json_or_jsonl_by_content_not_suffix(tmp_path):
    record = {"question": "Q?", "answer": "A", "evidence": [{"url": "https://x.com", "text": "F"}]}
    lines = write_lines(tmp_path / "gold.json", [record, record])  # JSONL named .json
    array = tmp_path / "gold.jsonl"
    array.write_text(json.dumps([record, record]))  # an array named .jsonl
    assert len(formats.load_gold(lines)) == len(formats.load_gold(array)) == 2


@pytest.mark.parametrize(("records", "message"), [
    ([{"user_input": "Q?"}], "record 0 has no 'reference' (or 'ground_truth') text"),
    ([{"reference": "A"}], "record 0 has no 'user_input' (or 'question') text"),
    ([{"user_input": "Q?", "reference": "A", "reference_contexts": "one string"}],
     "record 0: reference_contexts must be a list of texts"),
    ([{"question": "Q?", "evidence": ["not an object"]}],
     "question 0: evidence must be a list of objects"),
])
def test_bad_records_are_one_line_errors_naming_the_file(tmp_path, records, message):
    path = write_lines(tmp_path / "bad.jsonl", records)
    with pytest.raises(RagError) as caught:
        formats.load(path)
    assert str(caught.value) == f"{path}: {message}"


def test_a_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text('{"question": "Q?"}\n{"question": \n')
    with pytest.raises(RagError, match=r"gold.jsonl: malformed JSON at line 2"):
        formats.load(path)
