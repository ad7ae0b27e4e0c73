"""BEIR folders: the reader, the document-level metrics on hand-computed rankings, and a real
ingest of the corpus whose passages map back to the BEIR ids.

The folder is made by hand: five documents, four queries, graded judgments; with it, the
document rankings whose metrics are computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.core.errors import RagError
from rag.evaluation import evaluate as ev
from rag.evaluation import formats
from rag.evaluation.table import table
from rag.ingest.sources import beir_url

from conftest import open_service

CORPUS = [
    {"_id": "d1", "title": "Photosynthesis",
     "text": "Chlorophyll in plant leaves captures sunlight to make sugar."},
    {"_id": "d2", "title": "Volcanoes",
     "text": "Magma rises through the crust and erupts as lava."},
    {"_id": "d3", "title": "Plant cells",
     "text": "Plant cells have walls of cellulose and chloroplasts holding chlorophyll."},
    {"_id": "d4", "title": "Tides",
     "text": "The gravity of the moon pulls the oceans, raising tides twice a day."},
    {"_id": "doc 5/é", "title": "Moon", "text": "The moon orbits the earth every 27 days.",
     "metadata": {}},
]
QUERIES = [
    {"_id": "q1", "text": "How does chlorophyll capture sunlight?"},
    {"_id": "q2", "text": "Where does lava come from?"},
    {"_id": "q3", "text": "How does the moon pull the oceans?"},
    {"_id": "q4", "text": "A question nobody judged"},  # no qrels: dropped, as BEIR does
]
QRELS = {"q1": {"d1": 2, "d3": 1}, "q2": {"d2": 1}, "q3": {"d4": 1, "doc 5/é": 1, "d2": 0}}

# what a retriever returns for each query, as document ids of its passages in rank order
# (a document may have several passages; x1.. are documents nobody judged)
RANKED = {
    "q1": ["d3", "d3", "d2", "d1", "doc 5/é"],  # documents: d3 d2 d1 doc5
    "q2": ["d1", "d3", "d4", *(f"x{i}" for i in range(1, 9)), "d2"],  # d2 is document 12
    "q3": ["d2", "doc 5/é", "doc 5/é", "d4"],  # documents: d2 (judged 0) doc5 d4
}
_L3 = 1 / math.log2(3)
# by hand: q1 DCG = 1/log2(2) + 2/log2(4) = 2, IDCG = 2 + 1/log2(3); q2 0;
# q3 DCG = 1/log2(3) + 1/log2(4), IDCG = 1 + 1/log2(3)  (pytrec_eval gives the same)
EXPECTED = {
    "doc_ndcg@10": (2 / (2 + _L3) + 0 + (_L3 + 0.5) / (1 + _L3)) / 3,
    "doc_recall@10": (1 + 0 + 1) / 3,
    "doc_recall@100": 1.0,
    "doc_map@10": ((1 / 1 + 2 / 3) / 2 + 0 + (1 / 2 + 2 / 3) / 2) / 3,
    "doc_mrr@10": (1 + 0 + 1 / 2) / 3,
    "article@1": 1 / 3,  # only q1's rank-1 document is relevant
}


def write_beir_folder(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in CORPUS), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    rows = [f"{q}\t{d}\t{s}" for q, judged in QRELS.items() for d, s in judged.items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                               + "\n".join(rows) + "\n", encoding="utf-8")
    return folder


def ranked_result(doc_ids):
    passages = [SimpleNamespace(rank=i, text=f"passage {i} of {d}", url=beir_url(d), title=d)
                for i, d in enumerate(doc_ids, start=1)]
    return SimpleNamespace(passages=passages, answer=None)


def test_reads_a_beir_folder(tmp_path):
    gold = formats.load(write_beir_folder(tmp_path / "sample"))
    assert gold.format == "beir"
    assert [q.id for q in gold.questions] == ["q1", "q2", "q3"]  # q4 has no judgments
    q1, _, q3 = gold.questions
    assert q1.question == "How does chlorophyll capture sunlight?" and q1.qrels == QRELS["q1"]
    assert q1.urls == [beir_url("d1"), beir_url("d3")]  # the relevant ones, best first
    assert q1.notes == ["d1 (relevance 2): Photosynthesis", "d3 (relevance 1): Plant cells"]
    assert beir_url("d2") not in q3.urls and not q3.is_null and q1.answer == ""


def test_document_metrics_by_hand(tmp_path):
    gold = formats.load_gold(write_beir_folder(tmp_path / "sample"))
    asked = []

    def ask(question, k):
        asked.append(k)
        qid = next(q.id for q in gold if q.question == question)
        return ranked_result(RANKED[qid])

    report = ev.run(ask, gold)
    assert asked == [100, 100, 100] and report["depth"] == 100
    overall = report["overall"]
    for name, value in EXPECTED.items():
        assert overall[name] == pytest.approx(value, abs=1e-9), name
    # no facts, no gold answers: MultiHop's and the answer metrics do not apply
    assert overall["hits@4"] is None and overall["mrr@10"] is None and overall["f1"] is None
    assert report["null"] == {"questions": 0, "abstention": None}
    assert report["by_type"]["beir"]["doc_mrr@10"] == pytest.approx(0.5)
    assert report["curves"]["doc_recall"][0] == pytest.approx(1 / 6)  # q1: 1 of 2 at rank 1
    assert [w["id"] for w in report["worst"]] == ["q2", "q3", "q1"]  # by nDCG@10
    rows = table(report).splitlines()
    assert not any(r.startswith(("hits@", "mrr@", "map@")) for r in rows)  # no facts judged
    assert next(r for r in rows if r.startswith("doc_ndcg@10")).split()[1] == \
        f"{EXPECTED['doc_ndcg@10']:.4f}"


def test_a_server_depth_leaves_recall_at_100_unreported(tmp_path):
    gold = formats.load_gold(write_beir_folder(tmp_path / "sample"))
    by_text = {q.question: q.id for q in gold}
    report = ev.run(lambda q, k: ranked_result(RANKED[by_text[q]][:k]), gold, max_depth=50)
    assert report["depth"] == 50 and report["overall"]["doc_recall@100"] is None
    assert report["overall"]["doc_recall@10"] == pytest.approx(2 / 3)
    text = table(report)
    assert "doc_recall@100 is n/a" in text
    row = next(r for r in text.splitlines() if r.startswith("doc_recall@100"))
    assert row.split()[1:] == ["n/a", "n/a"]  # shown: its family applies


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: (f / "queries.jsonl").unlink(), "not a BEIR folder (no queries.jsonl)"),
    (lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n"),
     "test.tsv:2: expected query-id, corpus-id and an integer score"),
    (lambda f: (f / "qrels" / "test.tsv").write_text("q9\td1\t1\n"),
     "judges 1 queries that queries.jsonl lacks"),
    (lambda f: (f / "queries.jsonl").write_text('{"_id": "q1"}\n'), "queries.jsonl:1: a query"),
])
def test_broken_beir_folders_are_one_line_errors(tmp_path, change, message):
    folder = write_beir_folder(tmp_path / "sample")
    change(folder)
    with pytest.raises(RagError, match="sample") as caught:
        formats.load(folder)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_ingested_beir_corpus_maps_back_to_its_ids(tmp_path, hash_embedder):
    """The folder itself is ingested (its corpus only) and asked in process: every passage's
    URL is a BEIR stand-in, so the documents are judged by their BEIR ids."""
    folder = write_beir_folder(tmp_path / "sample")
    svc = open_service(tmp_path / "index", hash_embedder, chunk_tokens=60, chunk_overlap=10)
    ingested = svc.ingest_paths([folder])
    assert len(ingested.added) == 5 and not ingested.rejected
    gold = formats.load_gold(folder)
    report = ev.run(lambda q, k: svc.ask(q, k=k, mode="keyword"), gold)
    svc.close()
    urls = {p["url"] for w in report["worst"] for p in w["passages"]}
    assert urls and all(u.startswith("https://beir.local/") for u in urls)
    # each question's words are its relevant documents' own: BM25 ranks one of them first
    assert report["overall"]["doc_mrr@10"] == 1.0 and report["overall"]["article@1"] == 1.0
    assert report["overall"]["doc_recall@100"] == 1.0
