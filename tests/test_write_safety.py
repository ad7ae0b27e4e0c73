"""Write safety of the embedded index, in process: rebuilds that never lose an index, the
process lock, errors that say what happened, unique temporary files under concurrent writers,
a write acknowledged once committed, whole batches, and leftovers cleared (issue: writes that
never lie). The same faults over real HTTP are in test_faults_http.py."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag.errors import DiskFull, IndexBusy, IndexCorrupt, NotFound
from rag.storage import clear_stale_temps, storage_error
from rag.store import IndexParams, Store

from conftest import ROOT, open_service
from test_ingest import articles


def build(index: Path, embedder, n: int = 4):
    svc = open_service(index, embedder, chunk_tokens=60, chunk_overlap=10)
    svc.ingest_articles(articles(n))
    return svc


def params_of(store: Store, **changes) -> IndexParams:
    meta = store.meta()
    values = {"model": meta["model"], "dim": int(meta["dim"]),
              "chunk_tokens": int(meta["chunk_tokens"]),
              "chunk_overlap": int(meta["chunk_overlap"]), **changes}
    return IndexParams(**values)


@contextmanager
def holder(index: Path, how: str = "open"):
    """Another process that has the index open (``open``) or holds SQLite's write lock
    (``write``) until the block ends."""
    code = {"open": f"from rag.store import Store; s = Store.open({str(index)!r}); s.meta()",
            "write": f"import sqlite3; db = sqlite3.connect({str(index / 'rag.sqlite3')!r}, "
                     "isolation_level=None); db.execute('BEGIN IMMEDIATE')"}[how]
    proc = subprocess.Popen([sys.executable, "-c", code + "; print('ready', flush=True); "
                             "import sys; sys.stdin.read()"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


def snapshot(index: Path) -> tuple[int, int, str]:
    db = sqlite3.connect(index / "rag.sqlite3")
    try:
        gen = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]
        docs = db.execute("SELECT count(*) FROM documents").fetchone()[0]
        urls = ",".join(r[0] for r in db.execute("SELECT url FROM documents ORDER BY url"))
    finally:
        db.close()
    return int(gen), docs, urls


# ---------------------------------------------------------------- rebuilds


def test_rebuild_refuses_while_another_process_has_the_index_open(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.store, chunk_tokens=40)
    svc.store.shutdown()
    before = snapshot(index)
    with holder(index) as pid, pytest.raises(IndexBusy) as err, Store.rebuilding(index, params):
        pytest.fail("the rebuild started under another process")
    assert f"pid {pid}" in str(err.value) and "nothing was changed" in str(err.value)
    assert snapshot(index) == before
    assert [p.name for p in tmp_path.iterdir()] == ["index"]  # no half-built index left


def test_rebuild_swaps_in_a_complete_index_and_keeps_embeddings(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.store, chunk_tokens=40, chunk_overlap=5)
    stored = svc.store.counts()["embeddings"]
    svc.store.shutdown()
    with Store.rebuilding(index, params) as fresh:
        assert snapshot(index)[1] == 4  # the old index serves until the swap
        new = open_service(fresh, hash_embedder, chunk_tokens=40, chunk_overlap=5)
        assert new.store.counts()["embeddings"] == stored  # copied, not re-embedded
        new.ingest_articles(articles(2))
        new.store.shutdown()
    assert snapshot(index)[1] == 2 and Store.open(index).meta()["chunk_tokens"] == "40"
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_a_failed_rebuild_leaves_the_old_index(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.store)
    svc.store.shutdown()
    before = snapshot(index)
    with pytest.raises(RuntimeError), Store.rebuilding(index, params):
        raise RuntimeError("the ingest failed")
    assert snapshot(index) == before
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_a_damaged_index_is_rebuilt_and_kept_aside(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.store)
    svc.store.shutdown()
    (index / "rag.sqlite3").write_bytes(b"this is not a database" * 100)
    for leftover in index.glob("rag.sqlite3-*"):
        leftover.unlink()
    with pytest.raises(IndexCorrupt, match="damaged"):
        Store.open(index).meta()
    with Store.rebuilding(index, params) as fresh:
        open_service(fresh, hash_embedder, chunk_tokens=60, chunk_overlap=10).store.shutdown()
    assert snapshot(index)[1] == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("index.damaged-")]
    assert len(aside) == 1 and (aside[0] / "rag.sqlite3").read_bytes().startswith(b"this is")


def test_the_write_lock_of_another_process_is_named_not_a_rebuild_hint(tmp_path,
                                                                         hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    svc.store.shutdown()
    with holder(index, "write") as pid:
        store = Store.open(index)
        conn = store._conn()
        conn.execute("PRAGMA busy_timeout=200")  # not the minute a writer waits
        with pytest.raises(IndexBusy) as err, store._write():
            pass
        store.shutdown()
    assert f"pid {pid}" in str(err.value) and "--rebuild" not in str(err.value)


def test_storage_errors_say_what_happened(tmp_path):
    def sqlite_error(name: str, code: int) -> sqlite3.Error:
        exc = sqlite3.OperationalError(name)
        exc.sqlite_errorcode, exc.sqlite_errorname = code, name
        return exc

    full = storage_error(sqlite_error("database or disk is full", 13), tmp_path)
    assert isinstance(full, DiskFull) and "disk is full" in str(full)
    assert "MB free" in str(full) and "nothing was lost" in str(full)
    assert "--rebuild" not in str(full) and full.http_status == 507
    assert isinstance(storage_error(OSError(errno.ENOSPC, "No space"), tmp_path), DiskFull)
    busy = storage_error(sqlite_error("database is locked", 5), tmp_path)
    assert isinstance(busy, IndexBusy) and "--rebuild" not in str(busy)
    damaged = storage_error(sqlite_error("file is not a database", 26), tmp_path)
    assert isinstance(damaged, IndexCorrupt) and "--rebuild" in str(damaged)


# ---------------------------------------------------------------- concurrent writers


def test_concurrent_writers_in_one_process_all_succeed(tmp_path, hash_embedder):
    """Threads used to share .manifest.json.tmp and the vectors' temporary file: a rename
    found its file gone, and a committed write was answered with a 500."""
    svc = build(tmp_path / "index", hash_embedder, n=2)
    stop = time.monotonic() + 3.0

    def writer(worker: int) -> int:
        done = 0
        while time.monotonic() < stop:
            record = {"url": f"https://example.org/w{worker}/{done}", "title": f"W{worker}",
                      "body": f"Writer {worker} wrote story number {done} about harbours."}
            item = svc.add_records([record])[0]
            assert item["status"] == "added", item
            svc.delete_document(item["document_id"])
            done += 1
        return done

    with ThreadPoolExecutor(4) as pool:
        rounds = list(pool.map(writer, range(4)))
    assert min(rounds) > 0
    assert svc.store.counts()["documents"] == 2 and not svc.store.problems()
    assert not [p for p in (tmp_path / "index").iterdir() if p.name.endswith(".tmp")]


def test_a_deletion_is_answered_once(tmp_path, hash_embedder):
    svc = build(tmp_path / "index", hash_embedder, n=2)
    doc = svc.store.documents(10, 0)[1][0]["document_id"]
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: _delete(svc, doc), range(4)))
    assert sorted(outcomes) == ["deleted", "not_found", "not_found", "not_found"]


def _delete(svc, doc: str) -> str:
    try:
        svc.delete_document(doc)
    except NotFound:
        return "not_found"
    return "deleted"


# ---------------------------------------------------------------- acknowledged = committed


def test_a_committed_write_is_acknowledged_when_saving_the_vectors_fails(tmp_path,
                                                                      hash_embedder,
                                                                      monkeypatch):
    from rag.vectors import VectorIndex

    index = tmp_path / "index"
    svc = build(index, hash_embedder, n=2)

    def no_space(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with monkeypatch.context() as patch:
        patch.setattr(VectorIndex, "save", no_space)
        item = svc.add_records([{"url": "https://example.org/late", "title": "Late",
                                 "body": "A late story about lighthouses and fog."}])[0]
        assert item["status"] == "added"
        report = svc.ingest_articles(articles(3))
        assert report.added and any("not saved" in n and "disk is full" in n
                                    for n in report.notes)
        svc.delete_document(item["document_id"])  # acknowledged as well
    assert svc.store.vectors_stale()
    svc.store.shutdown()
    again = open_service(index, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    vectors, gen = again.store.vectors()  # caught up from the stored embeddings...
    assert len(vectors) == again.store.counts()["chunks"]
    assert not again.store.vectors_stale()  # ...and saved once caught up


def test_an_unchanged_rerun_saves_vectors_a_killed_ingest_left_stale(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder, n=3)
    for saved in index.glob("vectors-*.faiss"):
        saved.unlink()  # as if the ingest was killed after its last commit
    report = svc.ingest_articles(articles(3))
    assert len(report.unchanged) == 3 and not report.generation
    assert not svc.store.vectors_stale()


def test_an_http_batch_is_one_transaction(tmp_path, hash_embedder, monkeypatch):
    svc = build(tmp_path / "index", hash_embedder, n=1)
    writes = []
    real = svc.store.write
    monkeypatch.setattr(svc.store, "write", lambda *a, **k: writes.append(1) or real(*a, **k))
    records = [{"url": f"https://example.org/batch/{i}", "title": f"B{i}",
                "body": f"Batch story {i} about rivers."} for i in range(150)]
    items = svc.add_records(records)
    assert [i["status"] for i in items] == ["added"] * 150 and len(writes) == 1


# ---------------------------------------------------------------- leftovers


def test_stale_temporary_files_are_cleared_on_open(tmp_path, hash_embedder):
    index = tmp_path / "index"
    build(index, hash_embedder).store.shutdown()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    dead = [index / f".vectors-0000000003.faiss.{gone}.abc123.tmp",
            index / f".manifest.json.{gone}.xyz.tmp"]
    for path in dead:
        path.write_bytes(b"x" * 1000)
    (index / f".lexical-0000000003.{gone}.q1.tmp").mkdir()
    live = index / f".manifest.json.{os.getpid()}.mine.tmp"
    live.write_bytes(b"in progress")
    Store.open(index).shutdown()
    assert not any(p.exists() for p in dead) and live.exists()
    assert not (index / f".lexical-0000000003.{gone}.q1.tmp").exists()
    assert clear_stale_temps(index) == []  # ours stays while we live


# ---------------------------------------------------------------- a full disk (tmpfs)


@contextmanager
def small_disk(path: Path, mb: int):
    """A tmpfs of ``mb`` MB at ``path`` (needs root, as CI has; skipped elsewhere)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk; the file to remove to free it again."""
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_is_refused_plainly_and_reads_keep_working(tmp_path, hash_embedder):
    with small_disk(tmp_path / "disk", 8) as disk:
        index = disk / "index"
        svc = build(index, hash_embedder, n=3)
        params = params_of(svc.store, chunk_tokens=40)
        svc.store.shutdown()
        before = snapshot(index)
        filler = fill(disk)
        reader = Store.open(index)  # a read-only open needs no room
        assert reader.counts()["documents"] == 3
        assert len(reader.dense_search(hash_embedder.encode(["story"])[0], 3,
                                       __import__("rag.documents").documents.Filters())) == 3
        reader.shutdown()
        with pytest.raises(DiskFull) as err:
            open_service(index, hash_embedder, chunk_tokens=60,
                         chunk_overlap=10).ingest_articles(articles(5))
        assert "disk is full" in str(err.value) and "rollback" not in str(err.value)
        with pytest.raises(DiskFull), Store.rebuilding(index, params):
            pytest.fail("rebuilt on a full disk")
        filler.unlink()
        assert snapshot(index) == before  # nothing lost, nothing half-written
        again = open_service(index, hash_embedder, chunk_tokens=60, chunk_overlap=10)
        assert len(again.ingest_articles(articles(5)).added) == 2
        again.store.shutdown()


def test_threads_reading_while_one_writes(tmp_path, hash_embedder):
    """Readers never see half of a write (one transaction), and never fail during one."""
    svc = build(tmp_path / "index", hash_embedder, n=1)
    records = [{"url": f"https://example.org/r/{i}", "title": f"R{i}",
                "body": f"Reader test story {i} about tides."} for i in range(40)]
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(svc.store.counts()["documents"])

    thread = threading.Thread(target=read)
    thread.start()
    svc.add_records(records)
    done.set()
    thread.join()
    assert set(seen) <= {1, 41}
