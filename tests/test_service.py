"""The service's admission: one question per slot at once, and a bounded wait for one."""

from __future__ import annotations

import os
import threading

import pytest

from conftest import open_service
from helpers import volcano

QUESTIONS = ["What is the range of the ATACMS missiles?", "Which volcano erupted?",
             "How many airports closed?", "Who leads Ukraine?"]


@pytest.mark.parametrize("slots", [1, 2])
def test_questions_beyond_the_slots_wait_their_turn(slots, tmp_path, hash_embedder):
    """At most ``slots`` questions (one per core by default) are answered at once in a
    process; the rest wait, and none fails."""
    from rag.service import Service

    svc = open_service(tmp_path / "index", hash_embedder, slots=slots, chunk_tokens=60,
                       chunk_overlap=10)
    svc.ingest_articles([volcano(n) for n in range(3)])
    inside, most, lock = [0], [0], threading.Lock()
    rank = svc.retriever.rank

    def counting(*args, **kwargs):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            threading.Event().wait(0.05)  # long enough for the others to arrive
            return rank(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    svc.retriever.rank = counting
    answers: list = []
    threads = [threading.Thread(target=lambda: answers.append(svc.ask("Which volcano erupted?")))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 6 and all(a.passages for a in answers)
    assert most[0] == slots
    assert Service(svc.index, svc.embedder, svc.settings).slots == len(os.sched_getaffinity(0))


def test_a_question_that_cannot_get_a_slot_in_time_is_refused_not_queued(tmp_path,
                                                                       hash_embedder):
    """Waiting for a slot is bounded by 90% of the request's time (RAG_REQUEST_TIMEOUT, or
    until shortly before the deadline the HTTP layer hands down), so the client gets 503
    'busy' rather than a 504 after it, and its work is never started; a request whose time is
    already (nearly) gone is refused even with a slot free; then questions are answered."""
    import time

    from rag.core.errors import Busy

    svc = open_service(tmp_path / "index", hash_embedder, slots=1, request_timeout=0.2,
                       chunk_tokens=60, chunk_overlap=10)
    svc.ingest_articles([volcano(n) for n in range(2)])
    started = []
    rank = svc.retriever.rank
    svc.retriever.rank = lambda *a, **kw: started.append(1) or rank(*a, **kw)
    assert svc._slots.acquire(timeout=1)  # the one slot, taken (as by a long question)
    try:
        begun = time.monotonic()
        with pytest.raises(Busy, match=r"all 1 query slots \(one per core\) stayed taken for "
                                       r"90% of the request's 0.2 s") as err:
            svc.ask("Which volcano erupted?")
        assert 0.17 <= time.monotonic() - begun < 1.0
        assert err.value.http_status == 503 and not started
    finally:
        svc._slots.release()
    with pytest.raises(Busy):  # its 504 is due in 10 ms: within the last 10%, not started
        svc.ask("Which volcano erupted?", deadline=time.monotonic() + 0.01)
    assert not started
    assert svc.ask("Which volcano erupted?", deadline=time.monotonic() + 5).passages and started
