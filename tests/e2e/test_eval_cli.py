"""`rag eval`: the seed gold set on an index and on a running server (the table, the report
files), a BEIR folder and a Ragas file end to end, and the one-line errors."""

from __future__ import annotations

import json
import subprocess

from conftest import RAG, ROOT, serving

SEED_GOLD = ROOT / "eval" / "seed_gold.jsonl"


def rag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RAG, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_cli_eval_on_the_seed_gold_set(seed_index, tmp_path):
    out = rag("eval", str(SEED_GOLD), "--index", str(seed_index), "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "hits@10" in out.stdout and "null questions: 2" in out.stdout
    table = [line for line in out.stdout.splitlines() if not line.startswith("wrote ")]
    assert max(len(line) for line in table) <= 100
    assert f"wrote {tmp_path / 'report.html'}" in out.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["overall"]["questions"] == 11
    # every seed question's evidence is the one seed article
    assert report["overall"]["url_recall@10"] == 1.0
    assert report["overall"]["hits@10"] >= 0.8
    # quality, not only counts: in id order the seed's chunks gave MRR@10 0.20
    assert report["overall"]["mrr@10"] >= 0.8 and report["null"]["abstention"] == 1.0
    assert report["settings"]["format"] == "jsonl" and report["settings"]["documents"] == 1
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '<table id="summary">' in (tmp_path / "report.html").read_text()


def test_cli_eval_of_a_server_equals_the_index(seed_index, tmp_path):
    local = rag("eval", str(SEED_GOLD), "--index", str(seed_index), "--out",
                str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    env = {"RAG_API_KEYS": "sesame", "RAG_PROTECT_READS": "true"}
    with serving(seed_index, env) as base:
        remote = rag("eval", str(SEED_GOLD), "--url", base, "--api-key", "sesame", "--out",
                     str(tmp_path / "remote"))
        wrong = rag("eval", str(SEED_GOLD), "--url", base, "--api-key", "nope")
    assert remote.returncode == 0, remote.stderr
    figures = [json.loads((tmp_path / side / "report.json").read_text())
               for side in ("local", "remote")]
    for name in ("overall", "by_type", "null", "answers", "curves", "worst"):
        assert figures[0][name] == figures[1][name], name
    assert figures[1]["settings"]["url"] == base
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.strip().splitlines() == [
        f"error: {base}/stats: HTTP 403 forbidden: the API key is not accepted "
        "(the key given with --api-key is not accepted)"]


def test_cli_eval_flag_errors(tmp_path):
    both = rag("eval", str(SEED_GOLD), "--index", str(tmp_path), "--url", "http://127.0.0.1:9")
    assert both.returncode == 2 and "give --index or --url, not both" in both.stderr
    key = rag("eval", str(SEED_GOLD), "--api-key", "k")
    assert key.returncode == 2 and "--api-key goes with --url" in key.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_input": "Q?"}\n')
    gold = rag("eval", str(bad), "--url", "http://127.0.0.1:9")
    assert gold.returncode == 2
    assert gold.stderr.strip() == f"error: {bad}: record 0 has no 'reference' (or " \
                                  "'ground_truth') text"
    # a report directory that cannot be made fails before any question is asked
    out = rag("eval", str(SEED_GOLD), "--url", "http://127.0.0.1:9", "--out", str(bad))
    assert out.returncode == 2 and out.stderr.strip() == (
        f"error: --out {bad}: cannot make the report directory (it is a file)")


def test_cli_eval_of_a_ragas_file_scores_as_the_same_gold(seed_index, tmp_path):
    """The seed gold written as Ragas samples (reference contexts = the evidence texts)
    finds the same hits; a Ragas question is never null, so the two unanswerable seed
    questions are left out."""
    seed = [json.loads(line) for line in SEED_GOLD.read_text().splitlines()]
    ragas = tmp_path / "ragas.jsonl"
    ragas.write_text("".join(json.dumps({
        "user_input": r["question"], "reference": r["answer"],
        "reference_contexts": [e["text"] for e in r["evidence"]]}) + "\n"
        for r in seed if r["evidence"]))
    outs = {}
    for name, gold in (("jsonl", SEED_GOLD), ("ragas", ragas)):
        done = rag("eval", str(gold), "--index", str(seed_index), "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        outs[name] = json.loads((tmp_path / name / "report.json").read_text())
    jsonl, from_ragas = outs["jsonl"]["overall"], outs["ragas"]["overall"]
    for metric in ("questions", "hits@1", "hits@10", "mrr@10", "map@10", "f1"):
        assert from_ragas[metric] == jsonl[metric], metric
    assert from_ragas["url_recall@10"] is None  # Ragas gold has no URLs
    assert outs["ragas"]["settings"]["format"] == "ragas"


def test_cli_ingest_and_eval_of_a_beir_folder(tmp_path):
    """A BEIR folder ingested as it is (its corpus) and scored with the real model: the
    documents come back as their BEIR ids."""
    folder = tmp_path / "tiny-beir"
    (folder / "qrels").mkdir(parents=True)
    docs = {"d1": ("Photosynthesis", "Chlorophyll in plant leaves captures sunlight to make "
                   "sugar for the plant."),
            "d2": ("Volcanoes", "Magma rises through the crust and erupts from volcanoes as "
                   "lava."),
            "d3": ("Tides", "The gravity of the moon pulls the oceans, raising tides twice a "
                   "day.")}
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in docs.items()))
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "How do plants capture sunlight?"}) + "\n"
        + json.dumps({"_id": "q2", "text": "Why do ocean tides happen?"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    index = tmp_path / "index"
    ingested = rag("ingest", str(folder), "--index", str(index), "--json")
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["added"] == 3  # not the queries
    done = rag("eval", str(folder), "--index", str(index), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["depth"] == 100 and report["settings"]["format"] == "beir"
    o = report["overall"]
    assert o["doc_mrr@10"] == 1.0 and o["doc_ndcg@10"] == 1.0 and o["doc_recall@100"] == 1.0
    assert o["hits@10"] is None
    rows = done.stdout.splitlines()
    assert not any(r.startswith("hits@") for r in rows)  # no facts in BEIR gold: not shown
    assert next(r for r in rows if r.startswith("doc_ndcg@10")).split()[1:] == ["1.0000"] * 2
