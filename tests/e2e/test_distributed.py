"""`rag ingest --ray`: Ray local mode builds the very index the local ingest builds.

Real model, real dev articles, real Ray (one local instance for the module, as `--ray local`
starts; the CLI test starts its own). Small commit groups and a duplicated article make the
cross-group embedding cache and the int8 batch composition (vectors depend on batch-mates)
matter, so "identical" is a strong claim here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from rag.core.config import Settings
from rag.core.errors import RagError
from rag.ingest.pipeline import IngestReport
from rag.ingest.ray import LOCAL_RAY_LOGS, EmbedderSpec, ingest_with_ray, ray_session
from rag.ingest.sources import parse_paths
from rag.service import Service

from conftest import DEV, RAG, ROOT

N_ARTICLES = 20
COMMIT_EVERY = 7  # 21 articles -> three groups, so caching across groups is exercised


@pytest.fixture(scope="module")
def articles_file(tmp_path_factory) -> Path:
    """20 dev articles and a copy of the first under another URL (same texts, later group)."""
    records = json.loads((DEV / "corpus.json").read_text())[:N_ARTICLES]
    records.insert(15, {**records[0], "url": records[0]["url"] + "?copy=1"})
    path = tmp_path_factory.mktemp("ray-input") / "articles.json"
    path.write_text(json.dumps(records))
    return path


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module; ingest_with_ray(address=None) uses it as it is."""
    with ExitStack() as stack:
        try:
            started = stack.enter_context(ray_session(None))
        except RagError:
            print_ray_logs()  # shown with the error: why the node did not come up
            raise
        assert started
        yield


def print_ray_logs(lines: int = 15) -> None:
    for log in sorted(Path(LOCAL_RAY_LOGS).glob("*")):
        if log.is_file() and log.suffix in {".out", ".err", ".log"} and log.stat().st_size:
            print(f"--- {log}", *log.read_text(errors="replace").splitlines()[-lines:],
                  sep="\n")


def service(index_dir: Path, embedder) -> Service:
    # the default model and runtime, which the Ray workers build for themselves
    settings = Settings(index_dir=index_dir, commit_every=COMMIT_EVERY)
    return Service.open(settings, create=True, for_writing=True, embedder=embedder)


@dataclass
class Built:
    svc: Service
    first: IngestReport


@pytest.fixture(scope="module")
def local_built(tmp_path_factory, real_embedder, articles_file) -> Built:
    svc = service(tmp_path_factory.mktemp("local") / "index", real_embedder)
    return Built(svc, svc.ingest_paths([articles_file]))


@pytest.fixture(scope="module")
def ray_built(tmp_path_factory, real_embedder, articles_file, local_ray) -> Built:
    svc = service(tmp_path_factory.mktemp("ray") / "index", real_embedder)
    seen: list[tuple[int, int]] = []
    report = svc.ingest_paths([articles_file], progress=lambda d, t: seen.append((d, t)),
                              ray="local")
    total = report.texts_embedded
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    return Built(svc, report)


def contents(index_dir: Path) -> tuple[list[tuple], list[tuple], dict[str, np.ndarray]]:
    """Documents, chunk spans (with their embedding keys) and the vector behind each key."""
    db = sqlite3.connect(index_dir / "rag.sqlite3")
    try:
        docs = db.execute("SELECT url, title, body, content_hash FROM documents "
                          "ORDER BY url").fetchall()
        chunks = db.execute("SELECT d.url, c.ordinal, c.char_start, c.char_end, c.n_tokens, "
                            "c.text, c.embed_hash FROM chunks c JOIN documents d USING "
                            "(document_id) ORDER BY d.url, c.ordinal").fetchall()
        vectors = {h: np.frombuffer(v, dtype=np.float32) for h, v in db.execute(
            "SELECT hash, vector FROM embeddings")}
    finally:
        db.close()
    return docs, chunks, vectors


def assert_same_index(a: Path, b: Path) -> None:
    docs_a, chunks_a, vecs_a = contents(a)
    docs_b, chunks_b, vecs_b = contents(b)
    assert docs_a == docs_b
    assert chunks_a == chunks_b
    assert vecs_a.keys() == vecs_b.keys()
    for key, vec in vecs_a.items():
        assert np.allclose(vec, vecs_b[key], rtol=0, atol=1e-5), key


def test_ray_ingest_builds_the_local_index(local_built, ray_built):
    assert ray_built.first.summary() == local_built.first.summary()
    summary = local_built.first.summary()
    assert summary["added"] == N_ARTICLES + 1 and summary["texts_cached"] > 0  # the copy
    assert ray_built.first.generation == local_built.first.generation == 3
    assert_same_index(local_built.svc.index.dir, ray_built.svc.index.dir)
    assert ray_built.svc.index.problems() == []


def test_second_ray_run_embeds_nothing(ray_built, articles_file):
    before = contents(ray_built.svc.index.dir)
    again = ray_built.svc.ingest_paths([articles_file], ray="local")
    assert len(again.unchanged) == N_ARTICLES + 1
    assert again.texts_embedded == again.chunks_written == 0 and not again.added
    assert again.generation == 0  # nothing written
    after = contents(ray_built.svc.index.dir)
    assert before[:2] == after[:2] and before[2].keys() == after[2].keys()


def test_changed_article_matches_local(local_built, ray_built, articles_file):
    """An edited article: only its new texts are embedded, on both paths alike."""
    articles = parse_paths([articles_file]).articles
    edited = replace(articles[3], body=articles[3].body + "\n\nA correction was appended.")
    batch = [*articles[:3], edited, *articles[4:]]
    local = local_built.svc.ingest_articles(batch)
    s = ray_built.svc.settings
    remote = ingest_with_ray(ray_built.svc.index, ray_built.svc.embedder,
                             EmbedderSpec(s.model, s.runtime), batch,
                             chunk_tokens=s.chunk_tokens, chunk_overlap=s.chunk_overlap,
                             commit_every=s.commit_every)
    assert remote.summary() == local.summary()
    assert local.updated == [edited.url] and 0 < local.texts_embedded < 5
    assert local.texts_cached > 0
    assert_same_index(local_built.svc.index.dir, ray_built.svc.index.dir)


def test_cli_ingest_with_ray_then_stats_check(tmp_path, articles_file, local_built):
    index = tmp_path / "index"
    env = {**os.environ, "RAG_COMMIT_EVERY": str(COMMIT_EVERY),
           "RAY_USAGE_STATS_ENABLED": "0"}
    out = subprocess.run([*RAG, "ingest", str(articles_file), "--index", str(index),
                          "--ray", "local", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == local_built.first.summary()
    check = subprocess.run([*RAG, "stats", "--check", "--index", str(index)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
