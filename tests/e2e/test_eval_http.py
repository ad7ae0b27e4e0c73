"""`rag eval --url`: the gold questions through POST /query of a real `rag serve` score exactly
as the same questions asked in process on the same index (the seed gold on the seed index, and
a slice of the dev split on 25 dev articles); and a protected server needs the API key."""

from __future__ import annotations

import json

import pytest

from rag.core.config import Settings
from rag.core.errors import RagError
from rag.evaluation import evaluate as ev
from rag.evaluation import remote
from rag.service import Service

from conftest import DEV, ROOT, open_service, serving

DEV_ARTICLES = 25
DEV_QUESTIONS = 60


def comparable(report: dict) -> dict:
    """Everything but the time each question took."""
    out = {key: value for key, value in report.items() if key != "latency_ms"}
    out["questions"] = [{k: v for k, v in row.items() if k != "ms"}
                        for row in report["questions"]]
    return out


def in_process(index_dir, embedder, gold) -> dict:
    svc = Service.open(Settings(index_dir=index_dir, model=embedder.name), embedder=embedder)
    try:
        return ev.run(lambda q, n: svc.ask(q, k=n), gold, k=10)
    finally:
        svc.close()


def over_http(base: str, gold, api_key: str | None = None) -> dict:
    return ev.run(remote.asker(base, api_key), gold, k=10, max_depth=remote.MAX_K)


def test_seed_gold_over_http_equals_in_process(seed_index, real_embedder):
    gold = ev.load_gold(ROOT / "eval" / "seed_gold.jsonl")
    local = in_process(seed_index, real_embedder, gold)
    with serving(seed_index) as base:
        remote_report = over_http(base, gold)
    assert comparable(remote_report) == comparable(local)
    # and the figures are real ones: the seed gold's evidence is found, the nulls abstain
    assert local["overall"]["hits@10"] >= 0.8 and local["null"]["abstention"] == 1.0
    assert local["overall"]["f1"] > 0 and len(local["worst"]) == 10


@pytest.fixture(scope="module")
def dev_slice_index(tmp_path_factory, real_embedder):
    folder = tmp_path_factory.mktemp("dev-slice")
    articles = json.loads((DEV / "corpus.json").read_text())[:DEV_ARTICLES]
    (folder / "articles.json").write_text(json.dumps(articles))
    svc = open_service(folder / "index", real_embedder)
    report = svc.ingest_paths([folder / "articles.json"])
    svc.close()
    assert len(report.added) == DEV_ARTICLES and not report.rejected
    return folder / "index"


def test_dev_slice_over_http_equals_in_process(dev_slice_index, real_embedder):
    gold = ev.load_gold(DEV / "queries.json")[:DEV_QUESTIONS]
    local = in_process(dev_slice_index, real_embedder, gold)
    with serving(dev_slice_index) as base:
        remote_report = over_http(base, gold)
    assert comparable(remote_report) == comparable(local)
    assert set(local["by_type"]) >= {"inference_query", "comparison_query"}
    # 18 of the 60 questions have evidence among these 25 articles
    assert 0 < local["overall"]["hits@10"] < 1 and local["null"]["questions"] == 4


def test_a_protected_server_needs_the_key(seed_index):
    gold = ev.load_gold(ROOT / "eval" / "seed_gold.jsonl")[:2]
    env = {"RAG_API_KEYS": "sesame,other", "RAG_PROTECT_READS": "true"}
    with serving(seed_index, env) as base:
        assert remote.server_stats(base, "sesame")["documents"] == 1
        assert over_http(base, gold, "sesame")["overall"]["questions"] == 2
        for key, status in ((None, 401), ("wrong", 403)):
            with pytest.raises(RagError) as caught:
                over_http(base, gold, key)
            message = str(caught.value)
            assert message.startswith(f"{base}/query: HTTP {status} ")
            assert "--api-key" in message and "\n" not in message
            assert "sesame" not in message
