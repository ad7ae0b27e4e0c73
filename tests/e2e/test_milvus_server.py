"""Milvus as a server: stateless API replicas sharing one corpus over the network.

The index lives in a Milvus Lite gRPC server (`python -m milvus_lite server`), a separate
process reached at http://127.0.0.1:PORT, which is the code path of a Milvus standalone or
cluster URI (pymilvus over gRPC; no file opened by the replicas). Two `rag serve` replicas use
it: what one writes the other serves at once, and both ride out a restart of Milvus.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import DEV, RAG, ROOT, free_port, start_server, stop_server


class MilvusServer:
    """A Milvus Lite server process on a fixed port and data directory (so it can restart)."""

    def __init__(self, data_dir: Path, log: Path):
        self.data_dir, self.log, self.port = data_dir, log, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "milvus_lite", "server", "--data-dir",
                 str(self.data_dir), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the Milvus Lite server did not listen in time")

    def stop(self) -> None:
        if self.proc is not None:
            stop_server(self.proc)
            self.proc = None


@pytest.fixture(scope="module")
def milvus(tmp_path_factory, seed_index) -> Iterator[MilvusServer]:
    """A Milvus server holding the seed index, copied in with `rag migrate --to URI`."""
    work = tmp_path_factory.mktemp("milvus-server")
    server = MilvusServer(work / "data", work / "milvus.log")
    server.start()
    try:
        done = subprocess.run([*RAG, "migrate", "--index", str(seed_index), "--to", server.uri],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def replica_dirs(tmp_path_factory) -> list[Path]:
    """Each replica's --index folder: it only holds the replica's log here."""
    return [tmp_path_factory.mktemp(f"replica-{name}") for name in ("a", "b")]


@pytest.fixture(scope="module")
def replicas(milvus, replica_dirs) -> Iterator[tuple[str, str]]:
    env = {"RAG_BACKEND": "milvus", "RAG_MILVUS_URI": milvus.uri}
    started = []
    try:
        for folder in replica_dirs:
            started.append(start_server(folder / "index", env))
        yield started[0][1], started[1][1]
    finally:
        for proc, _ in started:
            stop_server(proc)


def ask(base: str, question: str, k: int = 3) -> httpx.Response:
    return httpx.post(f"{base}/query", json={"question": question, "k": k}, timeout=120)


def test_what_one_replica_writes_the_other_serves(replicas, milvus):
    a, b = replicas
    article = json.loads((DEV / "corpus.json").read_text())[5]
    assert article["url"] not in [p["url"] for p in ask(b, article["title"]).json()["passages"]]

    added = httpx.post(f"{a}/documents", json=article, timeout=300)
    assert added.status_code == 200 and added.json()["added"] == 1
    doc_id = added.json()["items"][0]["document_id"]

    found = ask(b, article["title"])  # the other replica, with no restart or reload
    assert found.status_code == 200
    assert found.json()["passages"][0]["url"] == article["url"]
    assert httpx.get(f"{b}/documents", timeout=60).json()["total"] == 2

    assert httpx.delete(f"{b}/documents/{doc_id}", timeout=120).status_code == 200
    assert article["url"] not in [p["url"] for p in ask(a, article["title"]).json()["passages"]]
    assert httpx.get(f"{a}/documents/{doc_id}", timeout=60).status_code == 404

    env = {**os.environ, "RAG_BACKEND": "milvus", "RAG_MILVUS_URI": milvus.uri}
    check = subprocess.run([*RAG, "stats", "--check", "--json"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    stats = json.loads(check.stdout)
    assert stats["documents"] == 1 and stats["consistent"] is True


def test_replicas_ride_out_a_milvus_restart(replicas, milvus):
    a, b = replicas
    question = "What did Biden allow Ukraine to do with US missiles?"
    before = [p["chunk_id"] for p in ask(a, question).json()["passages"]]
    held = httpx.get(f"{b}/documents", timeout=60).json()["documents"]

    milvus.stop()
    down = ask(a, question)
    assert down.status_code == 503 and down.json()["error"]["code"] == "index_unavailable"
    assert httpx.get(f"{a}/health/live", timeout=30).status_code == 200  # the process is fine

    milvus.start()  # Milvus Lite comes back with its collections released (not loaded)
    for base in (a, b):  # within gRPC's reconnection back-off (seconds), with no restart
        deadline = time.monotonic() + 60
        while (back := ask(base, question)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert back.status_code == 200, back.text
        assert [p["chunk_id"] for p in back.json()["passages"]] == before
        assert httpx.get(f"{base}/documents", timeout=60).json()["documents"] == held


def test_replica_logs_have_no_tracebacks(replicas, replica_dirs):
    """Milvus going away is logged as one line per failed request, not a stack trace."""
    logs = [log for folder in replica_dirs for log in folder.glob("server-*.log")]
    assert len(logs) == 2
    for log in logs:
        text = log.read_text()
        assert "Traceback" not in text, text[-3000:]
