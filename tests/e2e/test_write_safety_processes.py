"""Write safety against other processes and a real full disk: a held index is never rebuilt,
a held lock is named, temporary files of dead writers go, a full disk is refused plainly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rag.core.documents import Filters
from rag.core.errors import DiskFull, IndexBusy
from rag.index.embedded.safety import clear_stale_temps
from rag.index.embedded.store import Store

from conftest import open_service
from helpers import articles, build, fill, holder, params_of, small_disk, snapshot

# ---------------------------------------------------------------- rebuilds


def test_rebuild_refuses_while_another_process_has_the_index_open(tmp_path, hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    params = params_of(svc.index, chunk_tokens=40)
    svc.index.close()
    before = snapshot(index)
    with holder(index) as pid, pytest.raises(IndexBusy) as err, Store.rebuilding(index, params):
        pytest.fail("the rebuild started under another process")
    assert f"pid {pid}" in str(err.value) and "nothing was changed" in str(err.value)
    assert snapshot(index) == before
    assert [p.name for p in tmp_path.iterdir()] == ["index"]  # no half-built index left


def test_the_write_lock_of_another_process_is_named_not_a_rebuild_hint(tmp_path,
                                                                         hash_embedder):
    index = tmp_path / "index"
    svc = build(index, hash_embedder)
    svc.index.close()
    with holder(index, "write") as pid:
        store = Store.open(index)
        conn = store._conn()
        conn.execute("PRAGMA busy_timeout=200")  # not the minute a writer waits
        with pytest.raises(IndexBusy) as err, store._write():
            pass
        store.close()
    assert f"pid {pid}" in str(err.value) and "--rebuild" not in str(err.value)


def test_stale_temporary_files_are_cleared_on_open(tmp_path, hash_embedder):
    index = tmp_path / "index"
    build(index, hash_embedder).index.close()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    dead = [index / f".vectors-0000000003.faiss.{gone}.abc123.tmp",
            index / f".manifest.json.{gone}.xyz.tmp"]
    for path in dead:
        path.write_bytes(b"x" * 1000)
    (index / f".lexical-0000000003.{gone}.q1.tmp").mkdir()
    live = index / f".manifest.json.{os.getpid()}.mine.tmp"
    live.write_bytes(b"in progress")
    Store.open(index).close()
    assert not any(p.exists() for p in dead) and live.exists()
    assert not (index / f".lexical-0000000003.{gone}.q1.tmp").exists()
    assert clear_stale_temps(index) == []  # ours stays while we live


# ---------------------------------------------------------------- a full disk (tmpfs)


def test_a_full_disk_is_refused_plainly_and_reads_keep_working(tmp_path, hash_embedder):
    with small_disk(tmp_path / "disk", 8) as disk:
        index = disk / "index"
        svc = build(index, hash_embedder, n=3)
        params = params_of(svc.index, chunk_tokens=40)
        svc.index.close()
        before = snapshot(index)
        filler = fill(disk)
        reader = Store.open(index)  # a read-only open needs no room
        assert reader.counts()["documents"] == 3
        assert len(reader.dense_search(hash_embedder.encode(["story"])[0], 3, Filters())) == 3
        reader.close()
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
        again.index.close()
