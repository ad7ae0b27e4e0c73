"""The HTTP contract, against a real uvicorn server over a real index of seeds/, on both
backends (the embedded SQLite + FAISS store, and Milvus Lite)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from conftest import BACKENDS, SEED_URL, serving, serving_copy

QUESTION = "What is the range of the ATACMS missiles?"


@pytest.fixture(scope="module", params=BACKENDS)
def seed_server(request, seed_index, tmp_path_factory) -> Iterator[str]:
    with serving_copy(request.param, seed_index, tmp_path_factory, "api") as (base, _):
        yield base


def post(base: str, body, **kwargs) -> httpx.Response:
    return httpx.post(f"{base}/query", json=body, timeout=60, **kwargs)


def test_atacms_question_end_to_end(seed_server):
    r = post(seed_server, {"question": QUESTION})
    assert r.status_code == 200
    data = r.json()
    top = data["passages"][0]
    answer = data["answer"]["sentences"][0]  # the best sentence first, citing its passage
    assert "190 miles" in answer["text"]
    assert all(answer["text"] in data["passages"][n - 1]["text"] for n in answer["citations"])
    assert top["url"] == SEED_URL
    assert "Michael Birnbaum" in top["author"]
    assert top["rank"] == 1 and top["published_date"] == "2024-11-26"
    assert top["source"] == "washingtonpost.com"
    doc = httpx.get(f"{seed_server}/documents/{top['document_id']}", timeout=30).json()
    assert doc["body"][top["char_start"]:top["char_end"]] == top["text"]
    assert doc["url"] == SEED_URL and "Michael Birnbaum" in doc["authors"]
    hl = top["highlight"]
    assert doc["body"][hl["char_start"]:hl["char_end"]] == hl["text"]
    assert top["char_start"] <= hl["char_start"] < hl["char_end"] <= top["char_end"]
    assert data["took_ms"] > 0 and data["question"] == QUESTION


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_every_mode_returns_cited_passages(seed_server, mode):
    data = post(seed_server, {"question": QUESTION, "k": 3, "mode": mode}).json()
    assert 1 <= len(data["passages"]) <= 3
    assert [p["rank"] for p in data["passages"]] == list(range(1, len(data["passages"]) + 1))
    assert all(p["url"] == SEED_URL for p in data["passages"])


def test_filters_that_exclude_the_only_article_return_nothing(seed_server):
    for filters in ({"authors": ["Somebody Else"]},
                    {"sources": ["nytimes.com"]},
                    {"published_after": "2024-11-27"},
                    {"published_before": "2024-11-25"}):
        data = post(seed_server, {"question": QUESTION, "filters": filters}).json()
        assert data["passages"] == [], filters


def test_filters_that_match_keep_the_article(seed_server):
    for filters in ({"authors": ["michael birnbaum"]}, {"sources": ["washingtonpost.com"]},
                    {"sources": ["https://www.washingtonpost.com/"]},
                    {"published_after": "2024-11-26", "published_before": "2024-11-26"}):
        data = post(seed_server, {"question": QUESTION, "filters": filters}).json()
        assert data["passages"], filters


BAD = [
    ({"question": ""}, "question"),
    ({"question": "   "}, "question is empty"),
    ({"question": "x" * 5_000_000}, "limit"),
    ({"question": QUESTION, "k": 0}, "k"),
    ({"question": QUESTION, "k": 500}, "k"),
    ({"question": QUESTION, "k": "5"}, "k"),
    ({"question": QUESTION, "k": 2.5}, "k"),
    ({"question": QUESTION, "mode": "semantic"}, "mode"),
    ({"question": 42}, "question"),
    ({"question": [QUESTION]}, "question"),
    ({"question": QUESTION, "answer": "yes"}, "answer"),
    ({"question": QUESTION, "filters": {"published_after": "2024-13-45"}}, "published_after"),
    ({"question": QUESTION, "filters": {"published_after": "2024-12-01",
                                        "published_before": "2024-11-01"}}, "later"),
    ({"question": QUESTION, "filters": {"published_after": 1732579200}}, "YYYY-MM-DD"),
    ({"question": QUESTION, "filters": {"authors": "Michael Birnbaum"}}, "authors"),
    ({"question": QUESTION, "filters": {"colour": "red"}}, "colour"),
    ({"question": QUESTION, "unknown": 1}, "unknown"),
    ({}, "question"),
    ([], "body"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD)
def test_bad_input_gets_4xx_with_one_error_shape(seed_server, body, mentions):
    r = post(seed_server, body)
    assert 400 <= r.status_code < 500
    err = r.json()["error"]
    assert set(err) == {"code", "message"} and mentions in err["message"]


def test_malformed_json_and_wrong_content(seed_server):
    for content in (b"{not json", b"", b"\xff\xfe", b"U{\xe9", b"\x15\xe9{\xfcT"):
        r = httpx.post(f"{seed_server}/query", content=content, timeout=30,
                       headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_json_schema_integers_and_dates(seed_server):
    """JSON Schema counts 5.0 as an integer; dates are YYYY-MM-DD text, never seconds; a
    query string's integer is its digits ("0.0" is refused, as the schema fuzzer expects)."""
    r = post(seed_server, {"question": QUESTION, "k": 3.0})
    assert r.status_code == 200 and len(r.json()["passages"]) <= 3
    for params in ({"published_after": "1732579200"}, {"published_before": "3.7e-54"},
                   {"offset": str(2**70)}, {"limit": "0"}, {"offset": "0.0"},
                   {"limit": "1.0"}, {"limit": " 5"}):
        r = httpx.get(f"{seed_server}/documents", params=params, timeout=30)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"] == "invalid_request"


def test_unknown_document_and_route(seed_server):
    r = httpx.get(f"{seed_server}/documents/doesnotexist", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{seed_server}/nope", timeout=30)
    assert r.status_code == 404 and "error" in r.json()
    r = httpx.get(f"{seed_server}/query", timeout=30)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_health_stats_documents(seed_server):
    assert httpx.get(f"{seed_server}/health").json() == {"status": "ok", "ready": True,
                                                        "documents": 1}
    stats = httpx.get(f"{seed_server}/stats").json()
    assert stats["documents"] == 1 and stats["chunks"] > 5 and stats["dim"] == 384
    assert stats["model"] == "sentence-transformers/all-MiniLM-L6-v2+int8"  # the default runtime
    page = httpx.get(f"{seed_server}/documents", params={"limit": 10}).json()
    assert page["total"] == 1 and page["documents"][0]["url"] == SEED_URL
    assert httpx.get(f"{seed_server}/documents", params={"limit": 0}).status_code == 422


def test_openapi_describes_the_contract(seed_server):
    spec = httpx.get(f"{seed_server}/openapi.json").json()
    assert {"/query", "/documents/{document_id}", "/documents", "/health", "/stats"} <= set(
        spec["paths"])
    responses = spec["paths"]["/query"]["post"]["responses"]
    assert "ErrorResponse" in str(responses["422"])


def test_answer_is_verbatim_and_cited(seed_server):
    data = post(seed_server, {"question": QUESTION, "k": 5}).json()
    answer = data["answer"]
    assert answer is not None and "190 miles" in answer["text"]
    by_rank = {p["rank"]: p for p in data["passages"]}
    for sentence in answer["sentences"]:
        assert sentence["citations"]
        for n in sentence["citations"]:
            assert sentence["text"] in by_rank[n]["text"]
        assert sentence["text"] in answer["text"]


def test_question_about_something_absent_gets_no_answer(seed_server):
    data = post(seed_server, {"question": "Who won the 2023 Formula One world championship?"}
                ).json()
    assert data["answer"] is None


def test_answer_can_be_turned_off(seed_server):
    data = post(seed_server, {"question": QUESTION, "answer": False}).json()
    assert data["answer"] is None and data["passages"]


def test_odd_source_filter_is_not_a_crash(seed_server):
    r = post(seed_server, {"question": QUESTION, "filters": {"sources": ["http://[x", "["]}})
    assert r.status_code == 200 and r.json()["passages"] == []


def test_whether_to_answer_does_not_depend_on_k(seed_server):
    for k in (1, 5):
        data = post(seed_server, {"question": QUESTION, "k": k}).json()
        assert data["answer"] is not None, k
        assert all(c <= k for s in data["answer"]["sentences"] for c in s["citations"])


def test_two_worker_processes_serve_one_index(seed_index, tmp_path):
    """`rag serve --workers 2` (RAG_WORKERS): both processes answer, and a write through one
    is seen by every later request, whichever process takes it."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    with serving(index, {"RAG_WORKERS": "2"}) as base:
        story = {"url": "https://example.org/okapi", "title": "Okapi census",
                 "body": "Rangers counted 412 okapis in the Ituri forest this spring. " * 3}
        added = httpx.post(f"{base}/documents", json=story, timeout=120)
        assert added.status_code == 200 and added.json()["added"] == 1
        for _ in range(12):  # new connections: the kernel spreads them over the workers
            with httpx.Client() as fresh:
                r = fresh.post(f"{base}/query", timeout=60,
                               json={"question": "How many okapis did rangers count?", "k": 1})
            assert r.status_code == 200 and r.json()["passages"][0]["url"] == story["url"]
            assert post(base, {"question": QUESTION}).json()["passages"][0]["url"] == SEED_URL


def test_the_app_keeps_its_loaded_objects_out_of_the_collector(seed_index, tmp_path,
                                                                real_embedder):
    """After the warm-up the loaded index is frozen (gc.freeze: a full collection of a dev
    index took 200 ms); it is unfrozen when the app stops."""
    import gc

    from fastapi.testclient import TestClient

    from rag.core.config import Settings
    from rag.server.app import create_app

    from conftest import open_service

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    app = create_app(Settings(index_dir=index, model=real_embedder.name),
                     service=open_service(index, real_embedder))
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        assert gc.get_freeze_count() > 10_000  # the model, the index, the app
        assert client.post("/query", json={"question": QUESTION}).status_code == 200
    assert gc.get_freeze_count() == 0
