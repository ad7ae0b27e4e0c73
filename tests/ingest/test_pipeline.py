"""The write path: incremental, idempotent, cached embeddings, prune, safe on bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.ingest.sources import parse_bytes

from conftest import open_service
from helpers import articles


def test_unchanged_input_embeds_nothing(tmp_path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    first = svc.ingest_articles(articles(5))
    assert len(first.added) == 5 and first.texts_embedded > 0
    embedded = hash_embedder.encoded
    again = svc.ingest_articles(articles(5))
    assert len(again.unchanged) == 5 and again.texts_embedded == 0
    assert hash_embedder.encoded == embedded
    assert svc.index.generation == first.generation  # nothing was written


def test_changed_article_replaces_its_chunks_only(tmp_path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    batch = articles(4)
    svc.ingest_articles(batch)
    before = svc.index.counts()
    changed = [*batch[:3], replace(batch[3], body="A completely new text. " * 5)]
    report = svc.ingest_articles(changed)
    assert report.updated == [batch[3].url] and len(report.unchanged) == 3
    doc = svc.index.document(batch[3].document_id)
    assert doc["body"] == changed[3].body and doc["chunks"] == 1
    assert svc.index.counts()["documents"] == before["documents"]
    index, _ = svc.index.vectors()
    assert len(index) == svc.index.counts()["chunks"]  # old chunks are gone from FAISS too


def test_embeddings_are_cached_by_content(tmp_path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    batch = articles(3)
    svc.ingest_articles(batch)
    svc.index.delete([a.url for a in batch])
    report = svc.ingest_articles(batch)  # same texts again: served from the cache
    assert len(report.added) == 3 and report.texts_embedded == 0 and report.texts_cached > 0


def test_prune_removes_missing_articles(tmp_path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    batch = articles(4)
    svc.ingest_articles(batch)
    report = svc.ingest_articles(batch[:2], prune=True)
    assert sorted(report.deleted) == sorted(a.url for a in batch[2:])
    assert svc.index.urls() == sorted(a.url for a in batch[:2])


def test_prune_is_skipped_when_inputs_were_rejected(tmp_path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    batch = articles(3)
    svc.ingest_articles(batch)
    bad = parse_bytes(b"garbage", "broken.txt").rejected
    report = svc.ingest_articles(batch[:1], bad, prune=True)
    assert report.deleted == [] and "skipped" in report.notes[0]
    assert len(svc.index.urls()) == 3


def test_prune_of_an_empty_directory_deletes_nothing(tmp_path, hash_embedder):
    """An empty (or unmounted) directory holds no articles: pruning against it would have
    emptied the index."""
    svc = open_service(tmp_path / "index", hash_embedder, chunk_tokens=60, chunk_overlap=10)
    svc.ingest_articles(articles(3))
    (tmp_path / "empty").mkdir()
    report = svc.ingest_paths([tmp_path / "empty"], prune=True)
    assert report.deleted == [] and any("no articles" in n for n in report.notes)
    assert len(svc.index.urls()) == 3


def test_stored_vectors_match_the_embedder(tmp_path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    [article] = articles(1)
    svc.ingest_articles([article])
    index, _ = svc.index.vectors()
    query = hash_embedder.encode([f"{article.title}\n" + svc.index.chunk_rows([1])[1]["text"]])[0]
    scores, ids = index.search(query, 1)
    assert ids[0] == 1 and np.isclose(scores[0], 1.0, atol=1e-5)


def test_index_files_are_written(tmp_path: Path, hash_embedder):
    svc = open_service(tmp_path, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    svc.ingest_articles(articles(2))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["model"] == hash_embedder.name and manifest["documents"] == 2
    assert manifest["chunk_tokens"] == "60" and manifest["format_version"] == "2"
    assert len(list(tmp_path.glob("vectors-*.faiss"))) == 1


def test_chunk_settings_the_model_cannot_read_are_refused(hash_embedder):
    import pytest

    from rag.core.errors import InvalidRequest
    from rag.ingest.pipeline import chunk_budget

    assert chunk_budget(hash_embedder, 128, 40) == 128  # the whole window: titles come off it
    with pytest.raises(InvalidRequest, match=r"chunk_tokens=129 is more than .*\(128 tokens\)"):
        chunk_budget(hash_embedder, 129)
    # a 32-token title leaves 96 of the 128: the overlap must fit in that
    with pytest.raises(InvalidRequest, match="chunk_overlap=96 must be smaller .* 96 tokens"):
        chunk_budget(hash_embedder, 128, 96)
