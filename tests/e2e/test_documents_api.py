"""Document management over real HTTP: add/update/delete/list, API keys, request ids, health."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conftest import BACKENDS, serving_copy, start_server, stop_server

KEY = "s3cret-key-1"
LOG_DIRS: list = []  # where the module's server writes its log
AUTH = {"Authorization": f"Bearer {KEY}"}


def story(n: int, body: str | None = None, **extra) -> dict:
    return {"url": f"https://example.org/news/{n}", "title": f"Volcano report {n}",
            "body": body or f"The Hekla volcano erupted on day {n}, closing 12 airports. "
                            "Ash reached Norway within hours.",
            "author": "Ana Ríos", "source": "Example Wire", "published_at": f"2024-05-0{n}",
            **extra}


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, seed_index, tmp_path_factory) -> Iterator[str]:
    """A real server over a copy of the seed index, with API keys on writes, on each backend."""
    env = {"RAG_API_KEYS": f"other-key, {KEY}", "RAG_MAX_BATCH_ARTICLES": "3",
           "RAG_MAX_BODY_BYTES": "200000", "RAG_CORS_ORIGINS": "https://app.example"}
    with serving_copy(request.param, seed_index, tmp_path_factory, "docs-api",
                      env) as (base, index):
        LOG_DIRS.append(index.parent)
        yield base


def test_writes_need_a_key_reads_do_not(server):
    for method, path, body in (("POST", "/documents", story(1)),
                               ("DELETE", "/documents/abc", None)):
        missing = httpx.request(method, server + path, json=body)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        wrong = httpx.request(method, server + path, json=body,
                              headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
        basic = httpx.request(method, server + path, json=body,
                              headers={"Authorization": f"Basic {KEY}"})
        assert basic.status_code == 401
    assert httpx.get(server + "/documents").status_code == 200
    assert httpx.post(server + "/query", json={"question": "ATACMS range?"}).status_code == 200


def test_a_url_twice_in_one_batch_is_rejected_once(server):
    """Found by the schemathesis run: it was a 500 (UNIQUE constraint) and lost the batch."""
    twice = [story(7), story(7, body="Another text under the same URL.")]
    resp = httpx.post(server + "/documents", json=twice, headers=AUTH, timeout=120)
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [i["status"] for i in items] == ["added", "rejected"]
    assert "duplicate URL" in items[1]["reason"] and "item 0" in items[1]["reason"]
    doc = httpx.get(f"{server}/documents/{items[0]['document_id']}").json()
    assert doc["body"] == story(7)["body"]
    httpx.delete(f"{server}/documents/{items[0]['document_id']}", headers=AUTH)


def test_add_update_unchanged_rejected_then_query_and_delete(server):
    batch = [story(1), story(2), {"title": "no url", "body": "text"}]
    resp = httpx.post(server + "/documents", json={"articles": batch}, headers=AUTH, timeout=120)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["added"], out["rejected"]) == (2, 1)
    assert [i["status"] for i in out["items"]] == ["added", "added", "rejected"]
    assert "url" in out["items"][2]["reason"].lower()

    again = httpx.post(server + "/documents", json=[story(1), story(2, body="Changed: the "
                       "Hekla eruption ended on day 9.")], headers=AUTH, timeout=120).json()
    assert [i["status"] for i in again["items"]] == ["unchanged", "updated"]

    hit = httpx.post(server + "/query", json={"question": "How many airports did Hekla close?",
                                              "k": 3}).json()
    top = hit["passages"][0]
    assert top["url"] == story(1)["url"] and "12 airports" in top["text"]
    doc = httpx.get(f"{server}/documents/{top['document_id']}").json()
    assert doc["body"][top["char_start"]:top["char_end"]] == top["text"]

    listed = httpx.get(server + "/documents", params={"source": "Example Wire"}).json()
    assert listed["total"] == 2 and {d["url"] for d in listed["documents"]} == {
        story(1)["url"], story(2)["url"]}
    dated = httpx.get(server + "/documents", params={"published_after": "2024-05-02",
                                                     "published_before": "2024-05-31"}).json()
    assert [d["url"] for d in dated["documents"]] == [story(2)["url"]]
    inverted = httpx.get(server + "/documents", params={"published_after": "2024-05-31",
                                                        "published_before": "2024-05-02"})
    assert inverted.status_code == 422 and "later than" in inverted.json()["error"]["message"]
    by_author = httpx.get(server + "/documents", params={"author": "ana ríos"}).json()
    assert by_author["total"] == 2

    gone = httpx.delete(f"{server}/documents/{top['document_id']}", headers=AUTH)
    assert gone.status_code == 200 and gone.json()["url"] == story(1)["url"]
    assert httpx.get(f"{server}/documents/{top['document_id']}").status_code == 404
    assert httpx.delete(f"{server}/documents/{top['document_id']}",
                        headers=AUTH).status_code == 404
    after = httpx.post(server + "/query", json={"question": "How many airports did Hekla "
                                                            "close?", "k": 5}).json()
    assert story(1)["url"] not in {p["url"] for p in after["passages"]}
    # the seed article is untouched by all of this
    seed = httpx.post(server + "/query", json={"question": "What is the range of the ATACMS "
                                                           "missiles?", "k": 3}).json()
    assert "190 miles" in seed["answer"]["text"]
    assert any("190 miles" in p["text"] for p in seed["passages"])


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 422, "not valid JSON"),
    (b"[]", 422, "expected an article"),
    (b"[1, 2]", 422, "expected an article"),
    (b'"text"', 422, "expected an article"),
    (b"[" + b",".join([b'{"url": "https://e.org/x"}'] * 4) + b"]", 422, "limit is 3"),
    (b'{"url": "https://e.org/big", "body": "' + b"x" * 250_000 + b'"}', 413, "limit"),
])
def test_bad_bodies_get_clear_4xx(server, body, status, fragment):
    resp = httpx.post(server + "/documents", content=body, headers={
        **AUTH, "content-type": "application/json"})
    assert resp.status_code == status, resp.text
    assert fragment in resp.json()["error"]["message"]


def test_a_request_line_over_64_kib_is_a_400_not_a_5xx(server):
    """The HTTP server reads a request target (path and query) of up to 65,535 bytes; past
    that it refuses the request with a plain-text 400 before the API reads it (docs/api.md)."""
    room = 65_535 - len("/documents?source=")
    fits = httpx.get(f"{server}/documents", params={"source": "a" * room})
    assert fits.status_code == 422 and "source" in fits.json()["error"]["message"]  # too long
    over = httpx.get(f"{server}/documents", params={"source": "a" * (room + 1)})
    assert over.status_code == 400 and over.text == "Invalid HTTP request received."
    assert httpx.get(server + "/health/live").json() == {"status": "ok"}


def test_request_ids_and_health(server):
    given = httpx.get(server + "/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123" and given.json() == {"status": "ok"}
    fresh = httpx.get(server + "/health/ready")
    assert len(fresh.headers["x-request-id"]) == 32 and fresh.json()["ready"] is True
    hostile = httpx.get(server + "/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"
    error = httpx.get(server + "/documents/nope", headers={"X-Request-ID": "r-1"})
    assert error.status_code == 404 and error.headers["x-request-id"] == "r-1"


def test_keys_never_reach_the_log(server):
    httpx.post(server + "/documents", json=story(3),
               headers={"Authorization": "Bearer wrong-key-zz9"})
    logs = "".join(p.read_text() for p in LOG_DIRS[-1].glob("server-*.log"))
    assert "request_id=" in logs  # the log is there, and has the requests
    assert KEY not in logs
    assert "wrong-key-zz9" not in logs


def test_metrics_count_requests_index_and_writes(server):
    httpx.get(server + "/documents/missing-id")
    httpx.post(server + "/documents", json=story(7), headers=AUTH, timeout=120)
    text = httpx.get(server + "/metrics").text
    assert ('rag_http_requests_total{method="GET",route="/documents/{document_id}",'
            'status="404"}') in text
    assert 'rag_http_request_duration_seconds_count{method="POST",route="/documents"}' in text
    assert "/documents/missing-id" not in text  # routes by template: no series per id
    assert 'rag_ingested_articles_total{result="added"}' in text
    docs = httpx.get(server + "/documents").json()["total"]
    assert f"rag_index_documents {float(docs)}" in text


def test_cors_only_for_configured_origins(server, seed_server):
    ok = httpx.options(server + "/query", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert ok.headers.get("access-control-allow-origin") == "https://app.example"
    other = httpx.post(server + "/query", json={"question": "ATACMS?"},
                       headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    closed = httpx.post(seed_server + "/query", json={"question": "ATACMS?"},
                        headers={"Origin": "https://app.example"})
    assert closed.status_code == 200 and "access-control-allow-origin" not in closed.headers


def test_protected_reads_need_a_key(seed_index):
    proc, base = start_server(seed_index, env={"RAG_API_KEYS": KEY,
                                               "RAG_PROTECT_READS": "true"})
    try:
        for method, path, body in (("POST", "/query", {"question": "ATACMS range?"}),
                                   ("GET", "/documents", None), ("GET", "/stats", None),
                                   ("GET", "/metrics", None)):
            assert httpx.request(method, base + path, json=body).status_code == 401
            assert httpx.request(method, base + path, json=body,
                                 headers={"Authorization": "Bearer x"}).status_code == 403
            assert httpx.request(method, base + path, json=body,
                                 headers=AUTH).status_code == 200
        assert httpx.get(base + "/health/live").status_code == 200  # probes stay open
    finally:
        stop_server(proc)
