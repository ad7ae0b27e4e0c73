"""Write safety of the embedded index, in process: rebuilds that never lose an index, the
process lock, errors that say what happened, unique temporary files under concurrent writers,
a write acknowledged once committed, whole batches, and leftovers cleared (issue: writes that
never lie). The same faults over real HTTP are in test_faults_http.py."""

from __future__ import annotations

import errno
import re
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.core.errors import DiskFull, IndexBusy, IndexCorrupt, NotFound, RagError
from rag.index.embedded.safety import storage_error
from rag.index.embedded.store import Store

from conftest import open_service
from helpers import articles, build, params_of, snapshot

# ---------------------------------------------------------------- rebuilds


def test_rebuild_swaps_in_a_complete_index_and_keeps_embeddings(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.index, chunk_tokens=40, chunk_overlap=5)
    stored = svc.index.counts()["embeddings"]
    svc.index.close()
    with Store.rebuilding(index, params) as fresh:
        assert snapshot(index)[1] == 4  # the old index serves until the swap
        new = open_service(fresh, hash_embedder, chunk_tokens=40, chunk_overlap=5)
        assert new.index.counts()["embeddings"] == stored  # copied, not re-embedded
        new.ingest_articles(articles(2))
        new.index.close()
    assert snapshot(index)[1] == 2 and Store.open(index).meta()["chunk_tokens"] == "40"
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_a_failed_rebuild_leaves_the_old_index(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.index)
    svc.index.close()
    before = snapshot(index)
    with pytest.raises(RuntimeError), Store.rebuilding(index, params):
        raise RuntimeError("the ingest failed")
    assert snapshot(index) == before
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_a_swap_that_fails_midway_puts_the_old_index_back(tmp_path, hash_embedder,
                                                           monkeypatch):
    """Without an atomic exchange the swap is two renames; if the second fails, the old index
    goes back where it was (it was left under a temporary name that the next clean-up of
    temporary files would have deleted)."""
    import os

    import rag.index.embedded.store as store_module

    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.index)
    svc.index.close()
    before = snapshot(index)
    monkeypatch.setattr(store_module, "exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def failing_second(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError(errno.EIO, "I/O error")
        return real_rename(src, dst)

    monkeypatch.setattr(store_module.os, "rename", failing_second)
    with pytest.raises(OSError), Store.rebuilding(index, params) as fresh:
        open_service(fresh, hash_embedder, chunk_tokens=60, chunk_overlap=10).index.close()
    monkeypatch.setattr(store_module.os, "rename", real_rename)
    assert len(calls) == 3  # aside, in (failed), back
    assert snapshot(index) == before
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_an_index_a_kill_left_mid_swap_is_put_back(tmp_path, hash_embedder):
    """Killed between the two renames, a rebuild leaves no index and the old one under a
    temporary name: the next open, or rebuild, puts it back before any clean-up of
    temporary files could delete it."""
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.index)
    svc.index.close()
    before = snapshot(index)
    dead = 999_999_999  # no such process
    for reopen in ("open", "rebuild"):
        index.rename(tmp_path / f".index.{dead}.old.tmp")
        (tmp_path / f".index.{dead}.abcd.tmp").mkdir(exist_ok=True)  # the new one, unmoved
        if reopen == "open":
            Store.open(index).close()
            assert snapshot(index) == before
        else:
            with Store.rebuilding(index, params) as fresh:
                assert snapshot(index) == before  # put back before the build
                Store.open(fresh, params, create=True).close()
            assert Store.exists(index) and snapshot(index)[1] == 0  # the rebuilt, empty one
        assert not (tmp_path / f".index.{dead}.old.tmp").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # the orphan cleared too


def test_no_index_is_created_among_or_rebuilt_over_other_files(tmp_path, hash_embedder):
    """A rebuild replaces its whole directory: pointed at a directory of someone's files or at
    a file (a mistyped --index), it refuses and changes nothing, as a first ingest does."""
    svc = build(tmp_path / "index", hash_embedder)
    params = params_of(svc.index)
    svc.index.close()
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    for where, said in ((folder, "holds files that are not an index's (thesis.txt)"),
                        (a_file, "it is a file, not a directory"),
                        (a_file / "index", f"{a_file} is a file, not a directory")):
        with pytest.raises(RagError, match=re.escape(said)), Store.rebuilding(where, params):
            pytest.fail("the rebuild started")
        with pytest.raises(RagError, match=re.escape(said)):
            Store.open(where, params, create=True)
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.txt"]
    assert (folder / "thesis.txt").read_text() == "years of work"
    assert a_file.read_text() == "keep me"
    # an empty directory is fine, and so is one with a README (the repository's index/):
    # a rebuild carries the README over
    for name, readme in (("empty", False), ("with-readme", True)):
        where = tmp_path / name
        where.mkdir()
        if readme:
            (where / "README.md").write_text("# index/")
        Store.open(where, params, create=True).close()
        with Store.rebuilding(where, params) as fresh:
            Store.open(fresh, params, create=True).close()
        assert Store.exists(where)
        if readme:
            assert (where / "README.md").read_text() == "# index/"


def test_files_put_in_the_index_during_a_rebuild_are_kept_aside(tmp_path, hash_embedder):
    """The directory is checked before a build that may take hours; what joins it meanwhile
    is not deleted with the old index but kept beside it, as a damaged index is."""
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.index)
    svc.index.close()
    with Store.rebuilding(index, params) as fresh:
        Store.open(fresh, params, create=True).close()
        (index / "notes.txt").write_text("written meanwhile")
    assert Store.exists(index) and not (index / "notes.txt").exists()
    [aside] = tmp_path.glob("index.replaced-*")
    assert (aside / "notes.txt").read_text() == "written meanwhile"


def test_a_rebuild_through_a_symbolic_link_rebuilds_its_target(tmp_path, hash_embedder):
    target = tmp_path / "data" / "index"
    svc = build(target, hash_embedder)
    params = params_of(svc.index, chunk_tokens=40, chunk_overlap=5)
    svc.index.close()
    link = tmp_path / "index"
    link.symlink_to(target)
    with Store.rebuilding(link, params) as fresh:
        Store.open(fresh, params, create=True).close()
    assert link.is_symlink() and Store.open(link).meta()["chunk_tokens"] == "40"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "index"]
    assert [p.name for p in target.parent.iterdir()] == ["index"]


def test_a_rebuild_clears_only_its_own_leftovers_beside_the_index(tmp_path, hash_embedder):
    """Temporary names of dead processes beside the index are removed only if they are this
    index's rebuilds: the parent may be a home directory with other programs' files."""
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.index)
    svc.index.close()
    ours = tmp_path / ".index.999999999.abcd.tmp"
    theirs = tmp_path / ".draft.999999999.abcd.tmp"
    ours.mkdir()
    theirs.write_text("another program's")
    with Store.rebuilding(index, params) as fresh:
        Store.open(fresh, params, create=True).close()
    assert not ours.exists() and theirs.read_text() == "another program's"


def test_a_damaged_index_is_rebuilt_and_kept_aside(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.index)
    svc.index.close()
    (index / "rag.sqlite3").write_bytes(b"this is not a database" * 100)
    for leftover in index.glob("rag.sqlite3-*"):
        leftover.unlink()
    with pytest.raises(IndexCorrupt, match="damaged"):
        Store.open(index).meta()
    with Store.rebuilding(index, params) as fresh:
        open_service(fresh, hash_embedder, chunk_tokens=60, chunk_overlap=10).index.close()
    assert snapshot(index)[1] == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("index.damaged-")]
    assert len(aside) == 1 and (aside[0] / "rag.sqlite3").read_bytes().startswith(b"this is")


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
    assert svc.index.counts()["documents"] == 2 and not svc.index.problems()
    assert not [p for p in (tmp_path / "index").iterdir() if p.name.endswith(".tmp")]


def test_a_deletion_is_answered_once(tmp_path, hash_embedder):
    svc = build(tmp_path / "index", hash_embedder, n=2)
    doc = svc.index.documents(10, 0)[1][0]["document_id"]
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
    from rag.index.embedded.vectors import VectorIndex

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
    assert svc.index.vectors_stale()
    svc.index.close()
    again = open_service(index, hash_embedder, chunk_tokens=60, chunk_overlap=10)
    vectors, gen = again.index.vectors()  # caught up from the stored embeddings...
    assert len(vectors) == again.index.counts()["chunks"]
    assert not again.index.vectors_stale()  # ...and saved once caught up


def test_an_unchanged_rerun_saves_vectors_a_killed_ingest_left_stale(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder, n=3)
    for saved in index.glob("vectors-*.faiss"):
        saved.unlink()  # as if the ingest was killed after its last commit
    report = svc.ingest_articles(articles(3))
    assert len(report.unchanged) == 3 and not report.generation
    assert not svc.index.vectors_stale()


def test_an_http_batch_is_one_transaction(tmp_path, hash_embedder, monkeypatch):
    svc = build(tmp_path / "index", hash_embedder, n=1)
    writes = []
    real = svc.index.write
    monkeypatch.setattr(svc.index, "write", lambda *a, **k: writes.append(1) or real(*a, **k))
    records = [{"url": f"https://example.org/batch/{i}", "title": f"B{i}",
                "body": f"Batch story {i} about rivers."} for i in range(150)]
    items = svc.add_records(records)
    assert [i["status"] for i in items] == ["added"] * 150 and len(writes) == 1


# ---------------------------------------------------------------- leftovers


def test_threads_reading_while_one_writes(tmp_path, hash_embedder):
    """Readers never see half of a write (one transaction), and never fail during one."""
    svc = build(tmp_path / "index", hash_embedder, n=1)
    records = [{"url": f"https://example.org/r/{i}", "title": f"R{i}",
                "body": f"Reader test story {i} about tides."} for i in range(40)]
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(svc.index.counts()["documents"])

    thread = threading.Thread(target=read)
    thread.start()
    svc.add_records(records)
    done.set()
    thread.join()
    assert set(seen) <= {1, 41}
