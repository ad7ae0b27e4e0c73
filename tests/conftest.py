"""Shared fixtures: the real offline model, real indexes on disk, a real uvicorn server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = SEEDS / "000_a22bc14bcfd77f4d.txt"
SEED_URL = ("https://www.washingtonpost.com/politics/2024/11/26/"
            "biden-ukraine-missiles-land-mines-negotiations/")
DEV = ROOT / "eval" / "data" / "multihop-rag-dev"
RAG = [sys.executable, "-m", "rag.cli"]


@pytest.fixture(scope="session")
def real_embedder():
    from rag.core.config import Settings
    from rag.embedding import make_embedder

    # the default backend with every core, as `rag ingest` uses: the dev-corpus test embeds
    # ~5,000 chunks
    return make_embedder(Settings().model, threads=os.cpu_count() or 1)


@pytest.fixture
def hash_embedder():
    from hash_embedder import HashEmbedder

    return HashEmbedder()


def open_service(index_dir: Path, embedder, slots: int | None = None, **overrides):
    from rag.core.config import Settings
    from rag.service import Service

    settings = Settings(index_dir=index_dir, model=embedder.name, **overrides)
    return Service.open(settings, create=True, for_writing=True, embedder=embedder,
                        slots=slots)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, real_embedder) -> Path:
    """An index built from seeds/ with the real model (through the CLI's code path)."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    svc = open_service(index_dir, real_embedder)
    report = svc.ingest_paths([SEEDS])
    assert len(report.added) == 1 and not report.rejected
    svc.index.close()
    return index_dir


@pytest.fixture(scope="session")
def news_index(seed_index, tmp_path_factory, real_embedder) -> Path:
    """The seed article plus the first 25 dev articles (several sources, authors and dates)."""
    index = tmp_path_factory.mktemp("news") / "index"
    shutil.copytree(seed_index, index)
    svc = open_service(index, real_embedder)
    records = json.loads((DEV / "corpus.json").read_text())[:25]
    items = svc.add_records(records)
    assert all(i["status"] == "added" for i in items), items
    svc.index.close()
    return index


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index_dir: Path, env: dict[str, str] | None = None,
                 timeout: float = 120, logs: Path | None = None,
                 port: int | None = None,
                 extra_args: tuple[str, ...] | list[str] = ()) -> tuple[subprocess.Popen, str]:
    """``rag serve`` in a subprocess (on ``port``, else a free one); its log goes to a file in
    ``logs`` (default: beside the index)."""
    port = port or free_port()
    log = (logs or index_dir.parent) / f"server-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*RAG, "serve", "--index", str(index_dir), "--port", str(port), *extra_args],
            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy in time")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@contextmanager
def fake_llm(log: Path) -> Iterator[str]:
    """The stand-in generation server (tests/fake_llm.py) for the block; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "fake_llm:app", "--port",
                             str(port), "--log-level", "warning"], cwd=ROOT / "tests",
                            env={**os.environ, "FAKE_LLM_LOG": str(log)})
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_server(proc)


@contextmanager
def serving(index_dir: Path, env: dict[str, str] | None = None,
            extra_args: tuple[str, ...] | list[str] = ()) -> Iterator[str]:
    """A real uvicorn server (subprocess) for the block; yields its base URL."""
    proc, base = start_server(index_dir, env, extra_args=extra_args)
    try:
        yield base
    finally:
        stop_server(proc)


def pytest_collection_modifyitems(config, items):
    """Tiers by directory: e2e/ (the real model, servers, subprocesses, a browser) and
    contract/ (both index backends, Milvus Lite) are `slow`; the rest is the fast tier that
    `make check` runs (docs/testing.md)."""
    for item in items:
        if {"e2e", "contract"} & set(Path(item.fspath).relative_to(ROOT / "tests").parts[:-1]):
            item.add_marker(pytest.mark.slow)


BACKENDS = ["embedded", "milvus"]


def to_milvus(index_dir: Path, uri: Path) -> dict[str, str]:
    """Copy an embedded index into a Milvus Lite file with ``rag migrate`` (a subprocess: a
    Lite file is locked by the process that opened it); the settings that serve it."""
    done = subprocess.run([*RAG, "migrate", "--index", str(index_dir), "--to", str(uri)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return {"RAG_BACKEND": "milvus", "RAG_MILVUS_URI": str(uri)}


@contextmanager
def serving_on(backend: str, index_dir: Path, env: dict[str, str] | None = None
               ) -> Iterator[str]:
    """A real server over ``index_dir`` as it is (embedded) or copied into Milvus Lite."""
    extra = to_milvus(index_dir, index_dir.parent / "milvus.db") if backend == "milvus" else {}
    with serving(index_dir, {**(env or {}), **extra}) as base:
        yield base


@contextmanager
def serving_copy(backend: str, index_dir: Path, tmp_path_factory, name: str,
                 env: dict[str, str] | None = None) -> Iterator[tuple[str, Path]]:
    """A real server on ``backend`` over a copy of ``index_dir``; yields (base URL, copy)."""
    index = tmp_path_factory.mktemp(f"{name}-{backend}") / "index"
    shutil.copytree(index_dir, index)
    with serving_on(backend, index, env) as base:
        yield base, index


@pytest.fixture(scope="session")
def seed_server(seed_index) -> Iterator[str]:
    """A real uvicorn server over the seed index."""
    with serving(seed_index) as base:
        yield base
