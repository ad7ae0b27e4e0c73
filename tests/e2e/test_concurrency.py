"""Queries from several threads while articles are added and deleted: no errors, and every
passage a whole, current article's span (real model, both backends)."""

from __future__ import annotations

import shutil
import threading

import pytest

from rag.core.errors import NotFound
from rag.index.embedded.bm25.index import LexicalIndex
from rag.index.embedded.bm25.segments import Policy

from conftest import BACKENDS, open_service, to_milvus
from helpers import volcano

QUESTIONS = ["What is the range of the ATACMS missiles?", "Which volcano erupted?",
             "How many airports closed?", "Who leads Ukraine?"]


@pytest.mark.parametrize("backend", [*BACKENDS, "segments"])
def test_queries_during_adds_and_deletes(backend, seed_index, tmp_path, real_embedder):
    """``segments``: the embedded backend with the keyword index caught up by segments,
    folded and merged in the back while the queries run (a small index is otherwise
    rebuilt whole on each change)."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    if backend == "milvus":
        to_milvus(index, tmp_path / "milvus.db")
        svc = open_service(index, real_embedder, backend="milvus",
                           milvus_uri=str(tmp_path / "milvus.db"))
    else:
        svc = open_service(index, real_embedder)
    if backend == "segments":
        svc.index._lexical.policy = Policy(small=0, fraction=0.5, max_segments=2)
    errors: list[BaseException] = []
    answered = [0]
    parts = [0]  # the most keyword index parts a query saw (base + segments)
    stop = threading.Event()

    def reader() -> None:
        i = 0
        while not stop.is_set():
            q = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            try:
                result = svc.ask(q, k=5)
                if backend == "segments":
                    parts[0] = max(parts[0], len(svc.index.lexical().parts))
                for p in result.passages:
                    try:
                        body = svc.index.document(p.document_id)["body"]
                    except NotFound:  # deleted after the query: allowed
                        continue
                    assert body[p.char_start:p.char_end] == p.text
                answered[0] += 1
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for round_ in range(8):
            svc.ingest_articles([volcano(round_), volcano(round_ + 100)])
            svc.index.delete([volcano(round_ + 100).url])
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[0]
    assert answered[0] >= 8
    urls = set(svc.index.urls())
    assert {volcano(r).url for r in range(8)} <= urls
    assert not {volcano(r + 100).url for r in range(8)} & urls
    seed = svc.ask("What is the range of the ATACMS missiles?", k=3)
    assert seed.answer is not None and "190 miles" in seed.answer.text
    assert any("190 miles" in p.text for p in seed.passages)
    if backend == "segments":
        assert parts[0] >= 2  # queries did run on segments
        with svc.index._read() as db:
            fresh = LexicalIndex(db)
        for merged in (False, True):  # as caught up, then after any merge in the back
            if merged:
                svc.index._lexical.wait(60)
            view = svc.index.lexical()
            assert len(view) == svc.index.counts()["chunks"]
            for q in QUESTIONS:  # exactly the live chunks
                assert {i for i, _ in view.search(q, 1000)} == {
                    i for i, _ in fresh.search(q, 1000)}, (merged, q)
        # and one more delete and add caught up without a merge, over what the run left
        svc.index._lexical.policy = Policy(small=0, fraction=100.0, max_segments=100)
        svc.index.delete([volcano(0).url])
        svc.ingest_articles([volcano(200)])
        view = svc.index.lexical()
        assert view.segments >= 1
        with svc.index._read() as db:
            fresh = LexicalIndex(db)
        for q in QUESTIONS:
            assert {i for i, _ in view.search(q, 1000)} == {i for i, _ in fresh.search(q, 1000)}
