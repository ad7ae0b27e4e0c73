"""Request timeouts: 504 with the one error shape when a response has not started in time;
the handler still finishes (a write is never cut half-way), streams are never cut."""

from __future__ import annotations

import shutil
import time

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.config import Settings
from rag.deadline import Deadline
from rag.service import Service

from conftest import open_service


def plumbing_app(finished: list[str]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(Deadline, read_seconds=0.2, write_seconds=2.0)

    @app.get("/slow")
    def slow(seconds: float) -> dict:
        time.sleep(seconds)
        finished.append(f"slow {seconds}")
        return {"slept": seconds}

    @app.post("/documents")
    def write(seconds: float) -> dict:
        time.sleep(seconds)
        finished.append("write")
        return {"written": True}

    @app.get("/health/live")
    def live(seconds: float = 0) -> dict:
        time.sleep(seconds)
        return {"status": "ok"}

    @app.get("/deadline")
    def deadline(request: Request) -> dict:
        return {"left": request.state.deadline - time.monotonic()}

    @app.get("/stream")
    def stream() -> StreamingResponse:
        def parts():
            for i in range(4):
                yield f"part {i}\n"
                time.sleep(0.15)  # 0.6 s in all, beyond the 0.2 s limit
        return StreamingResponse(parts(), media_type="text/plain")

    return app


def test_slow_read_gets_504_and_its_handler_still_finishes():
    finished: list[str] = []
    with TestClient(plumbing_app(finished)) as client:
        started = time.perf_counter()
        r = client.get("/slow", params={"seconds": 1.0})
        waited = time.perf_counter() - started
        assert r.status_code == 504
        assert r.json()["error"]["code"] == "timeout" and "RAG_REQUEST_TIMEOUT" in r.json()[
            "error"]["message"]
        assert waited < 0.9, "the client waited for the handler instead of the limit"
        assert client.get("/slow", params={"seconds": 0.01}).json() == {"slept": 0.01}
        deadline = time.monotonic() + 5
        while "slow 1.0" not in finished and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "slow 1.0" in finished


def test_writes_have_their_own_limit_and_health_none():
    finished: list[str] = []
    with TestClient(plumbing_app(finished)) as client:
        assert client.post("/documents", params={"seconds": 0.5}).status_code == 200
        assert finished == ["write"]
        assert client.get("/health/live", params={"seconds": 0.4}).status_code == 200


def test_a_started_stream_is_not_cut():
    with TestClient(plumbing_app([])) as client:
        r = client.get("/stream")
        assert r.status_code == 200 and r.text.count("part") == 4


def test_the_service_applies_request_timeout(seed_index, tmp_path, real_embedder):
    """The real app over the seed index, with a limit no real query can meet."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    svc = open_service(index, real_embedder)
    settings = Settings(index_dir=index, model=real_embedder.name, request_timeout=0.001)
    app = create_app(settings, service=svc)
    with TestClient(app) as client:
        r = client.post("/query", json={"question": "What range do the ATACMS missiles have?"},
                        headers={"X-Request-ID": "slow-1"})
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        assert r.headers["X-Request-ID"] == "slow-1"
        assert client.get("/health").status_code == 200  # exempt, and still answering
        metrics = client.get("/metrics").text
        assert 'route="/query",status="504"' in metrics


def test_a_handler_knows_when_its_504_is_due():
    with TestClient(plumbing_app([])) as client:
        left = client.get("/deadline").json()["left"]
        assert 0 < left <= 0.2


def test_a_question_with_no_free_slot_gets_503_busy_before_its_504(seed_index, tmp_path,
                                                                    real_embedder):
    """The real app: with every query slot taken, /query answers 503 'busy' once 90% of
    RAG_REQUEST_TIMEOUT is gone (the deadline handed down by the timeout middleware), not a
    504 later, and no search starts for it."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    settings = Settings(index_dir=index, model=real_embedder.name, request_timeout=1.0,
                        query_slots=1)
    svc = Service.open(settings, embedder=real_embedder)
    searched: list[str] = []
    search = svc.retriever.search
    svc.retriever.search = lambda q, *a, **kw: searched.append(q) or search(q, *a, **kw)
    with TestClient(create_app(settings, service=svc)) as client:
        searched.clear()  # the app's own warm-up question
        assert svc._slots.acquire(timeout=5)
        try:
            started = time.perf_counter()
            r = client.post("/query", json={"question": "What range do ATACMS missiles have?"})
            waited = time.perf_counter() - started
        finally:
            svc._slots.release()
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy", r.text
        assert 0.8 <= waited < 1.0 and not searched
        assert svc._slots.acquire(timeout=5)
        try:  # a chat frontend's question waits the same way
            r = client.post("/v1/chat/completions", json={
                "model": "rag", "stream": True,
                "messages": [{"role": "user", "content": "What range do ATACMS missiles have?"}]})
        finally:
            svc._slots.release()
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy", r.text
        assert not searched
        assert client.post("/query", json={"question": "ATACMS range"}).status_code == 200


def test_the_app_tells_the_service_how_many_requests_it_serves(seed_index, tmp_path,
                                                              real_embedder):
    """RAG_ALONE_WIDE through the real app: the request-id middleware counts the requests
    in flight, and a question gets the wide model call only while it is the one (the
    machine's load is stated here, so the test does not depend on this machine's)."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    settings = Settings(index_dir=index, model=real_embedder.name)
    svc = Service.open(settings, embedder=real_embedder)
    svc.headroom = type("Idle", (), {"idle": staticmethod(lambda: True)})()
    seen: list[tuple[int, bool]] = []
    search = svc.retriever.search
    svc.retriever.search = lambda q, *a, alone=False, **kw: (
        seen.append((svc.company(), alone)) or search(q, *a, alone=alone, **kw))
    app = create_app(settings, service=svc)
    with TestClient(app) as client:
        seen.clear()  # the warm-up question, asked before any request
        assert client.post("/query", json={"question": "ATACMS range"}).status_code == 200
        app.state.in_flight += 1  # as if another request were being served meanwhile
        try:
            assert client.post("/query", json={"question": "ATACMS range?"}).status_code == 200
        finally:
            app.state.in_flight -= 1
        assert app.state.in_flight == 0
    assert seen == [(1, True), (2, False)]
