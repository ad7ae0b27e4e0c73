"""Faults over real HTTP (a real `rag serve`, the real model): concurrent writers get no 500
for a saved write, a full disk is a 507 while reads go on, hostile input gets a clear 4xx,
a killed server keeps every acknowledged write and no half of an unacknowledged one, and a
large batch is all or nothing."""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import RAG, fake_llm, free_port, serving, start_server, stop_server
from helpers import fill, small_disk

KEY = "k3y-Alpha-42"
AUTH = {"Authorization": f"Bearer {KEY}"}


def article(tag: str, words: int = 30) -> dict:
    body = " ".join(f"{tag} harbour report word{i}." for i in range(words))
    return {"url": f"https://faults.example/{tag}", "title": f"Report {tag}", "body": body,
            "source": "Fault Wire", "published_at": "2024-03-01"}


def content_hash_of(record: dict) -> str:
    from rag.ingest.sources import article_from_record

    return article_from_record(record, "test").content_hash()


def documents(index: Path) -> dict[str, str]:
    db = sqlite3.connect(index / "rag.sqlite3", timeout=60)
    try:
        return dict(db.execute("SELECT url, content_hash FROM documents"))
    finally:
        db.close()


def check(index: Path) -> dict:
    done = subprocess.run([*RAG, "stats", "--index", str(index), "--check", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def writable(seed_index, tmp_path) -> Iterator[tuple[str, Path]]:
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    proc, base = start_server(index, {"RAG_API_KEYS": KEY})
    try:
        yield base, index
    finally:
        stop_server(proc)


def test_concurrent_writers_get_no_500_for_a_saved_write(writable):
    base, index = writable
    before = len(documents(index))
    stop = time.monotonic() + 6
    statuses: list[int] = []

    def client(worker: int) -> None:
        n = 0
        with httpx.Client(base_url=base, headers=AUTH, timeout=60) as http:
            while time.monotonic() < stop:
                added = http.post("/documents", json=article(f"c{worker}-{n}", 8))
                statuses.append(added.status_code)
                doc = added.json()["items"][0]["document_id"]
                statuses.append(http.delete(f"/documents/{doc}").status_code)
                n += 1

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(client, range(2)))
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    assert len(documents(index)) == before and check(index)["consistent"]


def test_hostile_input_gets_a_clear_4xx(writable):
    base, _ = writable
    long = "x" * 60_000
    for r in (httpx.get(f"{base}/documents", params={"source": long}),
              httpx.post(f"{base}/query", json={"question": "ATACMS range",
                                                "filters": {"sources": [long]}}),
              httpx.post(f"{base}/v1/chat/completions", json={
                  "messages": [{"role": "user", "content": "ATACMS range"}],
                  "rag": {"filters": {"sources": [long]}}})):
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
    # a LIKE wildcard in a source is a character, not a pattern
    assert httpx.get(f"{base}/documents", params={"source": "%"}).json()["total"] == 0
    assert httpx.get(f"{base}/documents",
                     params={"source": "washingtonpost.com"}).json()["total"] == 1
    deep = "[" * 10_000 + "]" * 10_000
    r = httpx.post(f"{base}/documents", content=deep, headers={**AUTH,
                                                               "content-type": "application/json"})
    assert r.status_code == 422 and "levels deep" in r.json()["error"]["message"]
    r = httpx.post(f"{base}/documents", json={"url": "https://x.example/nul",
                                              "body": "\u0000" * 50}, headers=AUTH)
    item = r.json()["items"][0]
    assert item["status"] == "rejected" and "no visible text" in item["reason"]
    r = httpx.post(f"{base}/query", json={"question": "\u200b\u200c\u2060\ufeff"})
    assert r.status_code == 422 and "no visible text" in r.json()["error"]["message"]
    two = [("Authorization", f"Bearer {KEY}"), ("Authorization", "Bearer wrong")]
    r = httpx.post(f"{base}/documents", json=article("dup"), headers=two)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    for near in (KEY[:-1], KEY + "x", KEY.lower(), KEY.upper(), f" {KEY}x"):
        r = httpx.post(f"{base}/documents", json=article("near"),
                       headers={"Authorization": f"Bearer {near}"})
        assert r.status_code == 403, near


def test_lone_surrogates_and_calendar_ends_get_no_500(writable):
    """JSON escapes of lone surrogates ("\\ud800") are not text: a 4xx naming them (or the
    article rejected) instead of a tokenizer or SQLite error; a question naming the last
    day of the calendar is answered (its date window overflowed)."""
    base, index = writable
    before = len(documents(index))
    raw = {"content-type": "application/json"}
    r = httpx.post(f"{base}/documents", headers={**AUTH, **raw},
                   content='{"url": "https://x.example/s", "body": "bad \\ud800 text."}')
    item = r.json()["items"][0]
    assert item["status"] == "rejected" and "unpaired surrogate" in item["reason"]
    for path, body in (
            ("/query", '{"question": "range?", "filters": {"sources": ["a\\ud800"]}}'),
            ("/v1/chat/completions",
             '{"messages": [{"role": "user", "content": "ATACMS \\udfff range"}]}'),
            ("/v1/chat/completions", '{"messages": [{"role": "user", "content": '
                                     '[{"type": "text", "text": "x \\ud800"}]}]}')):
        r = httpx.post(f"{base}{path}", content=body, headers=raw)
        assert r.status_code == 422 and "unpaired surrogate" in r.text, (path, r.text)
    for q in ("What happened on 9999-12-31?", "What happened on 0001-01-01?"):
        assert httpx.post(f"{base}/query", json={"question": q}).status_code == 200
    assert len(documents(index)) == before


def test_a_deeply_nested_file_is_rejected_in_one_line(tmp_path, seed_index):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    hostile = tmp_path / "deep.json"
    hostile.write_text("[" * 100_000 + "]" * 100_000)
    done = subprocess.run([*RAG, "ingest", str(hostile), "--index", str(index)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"rejected: {hostile}: JSON nested 100,000 levels deep" in done.stderr


def test_a_full_disk_is_507_and_reads_go_on(seed_index, tmp_path):
    with small_disk(tmp_path / "disk", 24) as disk:
        index = disk / "index"
        shutil.copytree(seed_index, index)
        before = documents(index)
        filler = fill(disk)
        proc, base = start_server(index, {"RAG_API_KEYS": KEY}, logs=tmp_path)
        try:
            r = httpx.post(f"{base}/documents", json=article("full"), headers=AUTH,
                           timeout=120)
            assert r.status_code == 507, r.text
            error = r.json()["error"]
            assert error["code"] == "insufficient_storage" and "disk is full" in error["message"]
            r = httpx.post(f"{base}/query", json={"question": "Who decided on ATACMS?"})
            assert r.status_code == 200 and r.json()["passages"]
            cli = subprocess.run([*RAG, "query", "ATACMS missiles", "--index", str(index)],
                                 capture_output=True, text=True, timeout=300)
            assert cli.returncode == 0 and "washingtonpost.com" in cli.stdout, cli.stderr
            new = tmp_path / "new.json"
            new.write_text(json.dumps(article("cli")))
            ingest = subprocess.run([*RAG, "ingest", str(new), "--index", str(index)],
                                    capture_output=True, text=True, timeout=300)
            assert ingest.returncode == 2, ingest.stderr
            assert "disk is full" in ingest.stderr and "Traceback" not in ingest.stderr
            assert "nothing was lost" in ingest.stderr and "--rebuild" not in ingest.stderr
            rebuild = subprocess.run([*RAG, "ingest", str(new), "--index", str(index),
                                      "--rebuild"], capture_output=True, text=True, timeout=300)
            assert rebuild.returncode == 2 and f"pid {proc.pid}" in rebuild.stderr
            filler.unlink()
            r = httpx.post(f"{base}/documents", json=article("room"), headers=AUTH,
                           timeout=120)
            assert r.status_code == 200 and r.json()["added"] == 1
        finally:
            stop_server(proc)
        after = documents(index)
        assert before.items() <= after.items() and len(after) == len(before) + 1


def test_a_large_batch_is_all_or_nothing(writable):
    """Readers never see part of a 150-article batch; killed mid-request, none of it lands
    (a batch was committed 64 articles at a time)."""
    base, index = writable
    before = set(documents(index))
    batch = [article(f"batch-{i}", 40) for i in range(150)]
    urls = {a["url"] for a in batch}
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(len(urls & set(documents(index))))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = httpx.post(f"{base}/documents", json=batch, headers=AUTH, timeout=300)
    finally:
        done.set()
        watcher.join()
    assert r.status_code == 200 and r.json()["added"] == 150
    assert set(seen) <= {0, 150} and seen.count(0) > 3  # watched while it was embedding
    assert set(documents(index)) == before | urls


def test_killed_during_a_large_batch_keeps_none_of_it(seed_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    before = set(documents(index))
    batch = [article(f"killed-{i}", 60) for i in range(300)]
    proc, base = start_server(index, {"RAG_API_KEYS": KEY})
    answers: list[object] = []
    sender = threading.Thread(target=lambda: answers.append(_post(base, batch)))
    sender.start()
    time.sleep(2.5)  # inside the batch's embedding (over 5 s here)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    sender.join(timeout=60)
    assert isinstance(answers[0], httpx.HTTPError), "the kill came after the answer"
    assert set(documents(index)) == before  # a batch committed 64 at a time left some
    assert check(index)["consistent"]


def _post(base: str, body) -> httpx.Response | httpx.HTTPError:
    try:
        return httpx.post(f"{base}/documents", json=body, headers=AUTH, timeout=300)
    except httpx.HTTPError as exc:
        return exc


def test_acknowledged_writes_survive_sigkills(seed_index, tmp_path):
    """Property: with writers posting and deleting while the server is SIGKILLed at random
    moments, every acknowledged write is there, every acknowledged deletion is gone, and an
    unacknowledged write is whole or absent."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    port = free_port()
    rng = random.Random(20261206)
    sent: dict[str, str] = {}  # url -> content hash of every article sent
    acked: set[str] = set()
    deleted: set[str] = set()
    # deletions sent but not acknowledged (the server was killed meanwhile): they may or may
    # not have been committed, so those articles are whole or absent
    unsure: set[str] = set()
    lock = threading.Lock()
    running = threading.Event()
    running.set()

    def writer(worker: int) -> None:
        n = 0
        own: list[tuple[str, str]] = []  # (url, document id) acknowledged
        while running.is_set():
            record = article(f"p{worker}-{n}", rng.randint(5, 60))
            n += 1
            with lock:
                sent[record["url"]] = content_hash_of(record)
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/documents", json=record,
                               headers=AUTH, timeout=30)
                if r.status_code == 200:
                    with lock:
                        acked.add(record["url"])
                    own.append((record["url"], r.json()["items"][0]["document_id"]))
                if own and rng.random() < 0.3:
                    url, doc = own.pop(0)
                    with lock:
                        unsure.add(url)
                    d = httpx.delete(f"http://127.0.0.1:{port}/documents/{doc}",
                                     headers=AUTH, timeout=30)
                    if d.status_code == 200:
                        with lock:
                            deleted.add(url)
            except httpx.HTTPError:
                time.sleep(0.2)  # the server is down: try again shortly

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    proc = _serve(index, port)
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            time.sleep(rng.uniform(1.5, 4.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc = _serve(index, port)
        time.sleep(2)
    finally:
        running.clear()
        for t in threads:
            t.join(timeout=60)
        stop_server(proc)
    now = documents(index)
    assert len(acked) > 10, "too few writes were acknowledged to test anything"
    for url in acked - deleted - unsure:
        assert now.get(url) == sent[url], f"acknowledged write {url} is missing or changed"
    for url in unsure - deleted:
        assert now.get(url) in (None, sent[url]), f"{url} changed"
    assert not deleted & set(now), "an acknowledged deletion came back"
    for url, digest in now.items():
        if url in sent:
            assert digest == sent[url]  # present means whole
    assert check(index)["consistent"]


def _serve(index: Path, port: int) -> subprocess.Popen:
    return start_server(index, {"RAG_API_KEYS": KEY}, port=port)[0]


def test_an_llm_that_fails_is_a_502_or_an_error_event(seed_index, tmp_path):
    """Unreachable, failing (HTTP 500) and broken mid-stream upstreams: a 502 with the error
    shape, or in a stream that has started, an error event the openai client raises."""
    import openai

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    question = "What did Biden decide about ATACMS missiles and land mines for Ukraine?"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with serving(index, {"RAG_LLM_BASE_URL": dead}) as base:
        for stream in (False, True):
            r = httpx.post(f"{base}/v1/chat/completions", timeout=120, json={
                "model": "rag-llm", "stream": stream,
                "messages": [{"role": "user", "content": question}]})
            assert r.status_code == 502 and r.json()["error"]["code"] == "llm_unavailable"
    log = tmp_path / "fake.jsonl"
    log.touch()
    with fake_llm(log) as llm, serving(index, {"RAG_LLM_BASE_URL": llm}) as base:
        messages = [{"role": "user", "content": "FAIL-MIDSTREAM"},
                    {"role": "assistant", "content": "..."},
                    {"role": "user", "content": question}]
        r = httpx.post(f"{base}/v1/chat/completions", timeout=120,
                       json={"model": "rag-llm", "stream": True, "messages": messages})
        events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        assert r.status_code == 200 and events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
        assert error["code"] == "llm_unavailable" and "stopped" in error["message"]
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0)
        with pytest.raises(openai.APIError, match="stopped"):
            list(client.chat.completions.create(model="rag-llm", messages=messages,
                                                stream=True))
