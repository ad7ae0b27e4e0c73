"""Request timeouts and busy answers through the real app and the real model."""

from __future__ import annotations

import shutil
import time

from fastapi.testclient import TestClient

from rag.core.config import Settings
from rag.server.app import create_app
from rag.service import Service

from conftest import open_service


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


def test_a_question_with_no_free_slot_gets_503_busy_before_its_504(seed_index, tmp_path,
                                                                    real_embedder):
    """The real app: with every query slot taken, /query answers 503 'busy' once 90% of
    RAG_REQUEST_TIMEOUT is gone (the deadline handed down by the timeout middleware), not a
    504 later, and no search starts for it."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    settings = Settings(index_dir=index, model=real_embedder.name, request_timeout=1.0)
    svc = Service.open(settings, embedder=real_embedder, slots=1)
    searched: list[str] = []
    rank = svc.retriever.rank
    svc.retriever.rank = lambda q, *a, **kw: searched.append(q) or rank(q, *a, **kw)
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
