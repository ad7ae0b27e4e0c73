"""SIGKILL at random points of `rag ingest`: the index always opens, checks clean, and keeps
every article committed before each kill, intact (real model, real subprocesses)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

from rag.ingest.sources import parse_bytes

from conftest import RAG, ROOT

CORPUS = ROOT / "eval" / "data" / "multihop-rag-dev" / "corpus.json"
TRIALS = 10


def stats(index) -> tuple[int, dict]:
    proc = subprocess.run([*RAG, "stats", "--index", str(index), "--check", "--json"],
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}


def indexed(index) -> dict[str, str]:
    """url -> content hash of every article in the index (read with plain sqlite3)."""
    import sqlite3

    if not (index / "rag.sqlite3").exists():
        return {}
    db = sqlite3.connect(index / "rag.sqlite3", timeout=30)
    try:
        return dict(db.execute("SELECT url, content_hash FROM documents"))
    except sqlite3.OperationalError:  # the schema is not there yet
        return {}
    finally:
        db.close()


def kill_after_next_commit(proc: subprocess.Popen, index, seen: int,
                           rng: random.Random) -> None:
    """Wait until the ingest commits past ``seen`` articles, then SIGKILL it a random
    0-1.5 s later: inside the next batch's embedding or its write transaction."""
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if len(indexed(index)) > seen:
            time.sleep(rng.uniform(0.0, 1.5))
            break
        time.sleep(0.1)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)


def test_sigkill_during_ingest_loses_nothing_committed(tmp_path):
    records = json.loads(CORPUS.read_text())[:48]
    source = tmp_path / "articles.json"
    source.write_text(json.dumps(records))
    expected = {a.url: a.content_hash() for a in parse_bytes(source.read_bytes(),
                                                             "articles.json").articles}
    index = tmp_path / "index"
    rng = random.Random(20261126)
    before: dict[str, str] = {}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_COMMIT_EVERY": "4"}
    partial = 0  # trials killed with some, but not all, articles committed
    for trial in range(TRIALS):
        proc = subprocess.Popen([*RAG, "ingest", str(source), "--index", str(index)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_after_next_commit(proc, index, len(before), rng)
        proc.wait(timeout=60)
        if not (index / "rag.sqlite3").exists():
            continue  # killed before the index was created: nothing to check yet
        code, figures = stats(index)
        assert code == 0 and figures["consistent"], (trial, figures.get("problems"))
        now = indexed(index)
        assert before.items() <= now.items(), f"trial {trial} lost or changed articles"
        assert all(expected[url] == digest for url, digest in now.items())  # whole articles
        assert figures["documents"] == len(now)
        partial += 0 < len(now) < len(expected) and len(now) > len(before)
        before = now
    print(f"kills that landed mid-corpus: {partial} of {TRIALS}")
    assert partial >= 5, "too few kills landed between commits to test anything"
    # and a last run, not killed, finishes the job from wherever the kills left it
    done = subprocess.run([*RAG, "ingest", str(source), "--index", str(index)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert indexed(index) == expected
    assert stats(index)[0] == 0
