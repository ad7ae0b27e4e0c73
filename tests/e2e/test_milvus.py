"""The Milvus backend (Milvus Lite files; the same code serves http://host:19530): the CLI on
it, parity of its rankings with the embedded store, `rag migrate`, and interrupted writes.

The HTTP contract and document management run on both backends in test_api.py and
test_documents_api.py (their server fixtures are parametrised over BACKENDS).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.core.documents import Filters
from rag.index.milvus import NO_DAY, MilvusStore

from conftest import DEV, RAG, ROOT, SEEDS, open_service

QUESTIONS = 30  # dev questions compared between the backends
# the stated tolerance: BM25 statistics and float sums differ slightly between bm25s and Milvus
MIN_TOP1_AGREEMENT = 0.9
MIN_TOP5_OVERLAP = 0.8


def rag(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*RAG, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def milvus_env(path: Path) -> dict[str, str]:
    return {"RAG_BACKEND": "milvus", "RAG_MILVUS_URI": str(path)}


def test_cli_verbs_on_milvus(tmp_path):
    env = milvus_env(tmp_path / "m.db")
    first = rag("ingest", str(SEEDS), "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == 1
    again = json.loads(rag("ingest", str(SEEDS), "--json", env=env).stdout)
    assert again["unchanged"] == 1 and again["texts_embedded"] == 0
    answer = rag("query", "What range do the ATACMS missiles have?", "--json", env=env)
    assert answer.returncode == 0, answer.stderr
    out = json.loads(answer.stdout)
    assert "190 miles" in out["answer"]["text"] and out["passages"][0]["url"].startswith(
        "https://www.washingtonpost.com/")
    stats = rag("stats", "--check", "--json", env=env)
    assert stats.returncode == 0 and json.loads(stats.stdout)["consistent"] is True
    written = json.loads(first.stdout)["chunks_written"]
    assert written > 1 and json.loads(stats.stdout)["chunks"] == written
    rebuilt = rag("ingest", str(SEEDS), "--rebuild", "--json", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["added"] == 1  # a fresh index
    assert json.loads(rag("stats", "--json", env=env).stdout)["documents"] == 1


def test_unreachable_milvus_is_one_line_and_nonzero(tmp_path):
    r = rag("stats", env={"RAG_BACKEND": "milvus", "RAG_MILVUS_URI": "http://127.0.0.1:1"})
    assert r.returncode != 0
    assert r.stderr.startswith("error: the Milvus index at http://127.0.0.1:1 is unavailable")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def both(seed_index, tmp_path_factory, real_embedder):
    """The seed plus 25 dev articles, ingested into the embedded store, then migrated."""
    from rag.core.config import Settings
    from rag.service import Service

    work = tmp_path_factory.mktemp("parity")
    index = work / "index"
    shutil.copytree(seed_index, index)
    svc = open_service(index, real_embedder)
    svc.add_records(json.loads((DEV / "corpus.json").read_text())[:25])
    svc.index.close()
    migrated = rag("migrate", "--index", str(index), "--to", str(work / "m.db"))
    assert migrated.returncode == 0, migrated.stderr
    embedded = open_service(index, real_embedder)
    milvus = Service.open(Settings(index_dir=index, model=real_embedder.name, backend="milvus",
                                   milvus_uri=str(work / "m.db")), embedder=real_embedder)
    yield embedded, milvus
    milvus.index.close()


def test_migrate_copies_without_changing_anything(both):
    embedded, milvus = both
    assert embedded.index.counts() == milvus.index.counts()
    assert embedded.index.content_hashes() == milvus.index.content_hashes()
    assert milvus.index.problems() == []
    doc = embedded.index.documents(1, 0)[1][0]["document_id"]
    a, b = embedded.index.document(doc), milvus.index.document(doc)
    for key in ("url", "title", "author", "authors", "published_date", "source", "body",
                "chunks", "content_hash"):
        assert a[key] == b[key], key


def test_both_backends_rank_alike(both):
    embedded, milvus = both
    questions = [q["query"] for q in json.loads((DEV / "queries.json").read_text())
                 if q["question_type"] != "null_query"][:QUESTIONS]
    top1, overlap = 0, 0.0
    for question in questions:
        a = [p.chunk_id for p in embedded.retriever.search(question, k=5)]
        b = [p.chunk_id for p in milvus.retriever.search(question, k=5)]
        top1 += a[:1] == b[:1]
        overlap += len(set(a) & set(b)) / max(len(a), 1)
    assert top1 / len(questions) >= MIN_TOP1_AGREEMENT, top1
    assert overlap / len(questions) >= MIN_TOP5_OVERLAP, overlap
    print(f"top-1 agreement {top1 / len(questions):.3f}, "
          f"top-5 overlap {overlap / len(questions):.3f} over {len(questions)} questions")
    filtered = milvus.retriever.search(questions[0], k=5, filters=Filters(sources=("TechCrunch",)))
    assert filtered and all(p.source == "TechCrunch" for p in filtered)


def test_an_interrupted_write_is_never_served_and_is_found(both):
    """Milvus has no transactions: a write killed between an article's chunks and its
    document row leaves chunks that no search returns, `problems()` reports, and a re-ingest
    replaces."""
    from rag.index.base import DocumentWrite
    from rag.ingest.pipeline import plan_article
    from rag.ingest.sources import Limits, article_from_record

    _, milvus = both
    store = milvus.index
    article = article_from_record({"url": "https://example.org/half", "title": "Half written",
                                   "body": "The zebra parade crossed Lisbon at dawn. " * 5},
                                  "test", Limits())
    chunks, texts = plan_article(article, milvus.embedder, 200, 20)
    vectors = dict(zip([f"h{i}" for i in range(len(texts))], milvus.embedder.encode(texts),
                       strict=True))
    write = DocumentWrite(article, chunks, list(vectors))
    store._upsert("chunks", [{  # the chunks only, as a killed write leaves them
        "id": 7_000_000 + i, "vector": vectors[h].tolist(), "tokens": "zebra parad lisbon",
        "text": c.text, "ordinal": c.ordinal, "char_start": c.char_start,
        "char_end": c.char_end, "n_tokens": c.n_tokens, "embed_hash": h,
        "document_id": article.document_id, "source_lc": "example.org",
        "domain": "example.org", "authors": [], "day": NO_DAY}
        for i, (c, h) in enumerate(zip(chunks, write.embed_hashes, strict=True))])
    assert store.interrupted() == [article.document_id] and store.problems() == []
    assert milvus.stats()["interrupted_writes"] == 1
    hits = milvus.retriever.search("zebra parade Lisbon", k=5)
    assert all(p.url != article.url for p in hits)
    reopened = MilvusStore.open(store.uri, check_chunking=True)  # a writer recovers
    assert reopened.interrupted() == []
    milvus.ingest_articles([article])
    assert store.problems() == [] and store.interrupted() == []
    assert milvus.retriever.search("zebra parade Lisbon", k=1)[0].url == article.url


def wait_for_a_document_write(proc: subprocess.Popen, db: Path, since: float) -> None:
    """Block until the ingest writes documents after ``since`` (wall clock) or ends. Milvus
    Lite holds its file's lock, so a write is seen from outside as a file of the documents
    collection's data (its write-ahead log or segments) changing on disk."""
    documents = db / "collections" / "rag_documents"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if any(f.stat().st_mtime > since for pattern in ("wal_data_*", "*.parquet")
                   for f in documents.rglob(pattern)):
                return
        except FileNotFoundError:  # Milvus Lite replaced a file while we looked
            pass
        time.sleep(0.1)


def test_sigkill_during_a_milvus_ingest_keeps_what_was_written(tmp_path):
    """`rag ingest` on Milvus Lite killed three times, 1, 2 and 3 s after its first write
    of each run: each time the index opens, checks clean, keeps every article it held
    before, whole; a last run completes the corpus. (The kills wait for a write, not for a
    fixed time, which in CI once landed before the index existed.)"""
    articles = json.loads((DEV / "corpus.json").read_text())[:48]
    source = tmp_path / "articles.json"
    source.write_text(json.dumps(articles))
    env = {**milvus_env(tmp_path / "m.db"), "RAG_COMMIT_EVERY": "4"}
    # a separate process reads the Lite file (this one must not keep its lock)
    read_back = ("import json, sys\n"
                 "from rag.index.milvus import MilvusStore\n"
                 "from rag.core.documents import document_id_for\n"
                 "s = MilvusStore.open(sys.argv[1])\n"
                 "print(json.dumps({u: s.document(document_id_for(u))['body'] "
                 "for u in s.urls()}))\n")
    bodies = {a["url"]: a["body"].strip() for a in articles}
    held: set[str] = set()
    counts = []
    for delay in (1, 2, 3, None):  # ~4 articles/s here once the model is loaded
        started = time.time()
        proc = subprocess.Popen([*RAG, "ingest", str(source)], cwd=ROOT,
                                env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if delay is not None:
            wait_for_a_document_write(proc, tmp_path / "m.db", started)
            time.sleep(delay)
            proc.kill()
        proc.wait(timeout=600)
        check = rag("stats", "--check", "--json", env=env)
        assert check.returncode == 0, check.stdout + check.stderr
        now = subprocess.run([sys.executable, "-c", read_back, env["RAG_MILVUS_URI"]],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert now.returncode == 0, now.stderr
        stored = json.loads(now.stdout)
        assert held <= set(stored)  # nothing written before a kill is lost
        assert all(body == bodies[url] for url, body in stored.items())  # and all whole
        held = set(stored)
        counts.append(len(held))
        print(f"after {'a kill' if delay else 'no kill'}: {len(held)} articles")
    assert held == set(bodies)
    assert any(0 < n < len(bodies) for n in counts[:-1])  # a kill did land mid-corpus
