"""Request timeouts: 504 with the one error shape when a response has not started in time
(a plumbing app), streams never cut, health exempt."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from rag.server.deadline import Deadline


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


def test_a_handler_knows_when_its_504_is_due():
    with TestClient(plumbing_app([])) as client:
        left = client.get("/deadline").json()["left"]
        assert 0 < left <= 0.2
