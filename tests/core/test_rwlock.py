"""The readers-writer lock: readers together, a writer alone, a waiting writer first."""

from __future__ import annotations

import threading

from rag.core.rwlock import ReadWriteLock


def test_readers_share_and_a_writer_waits_for_them():
    lock = ReadWriteLock()
    events: list[str] = []
    both_in = threading.Barrier(2, timeout=5)
    release = threading.Event()

    def reader(name: str) -> None:
        with lock.shared():
            both_in.wait()  # two readers inside at once, or this times out
            events.append(f"{name} in")
            release.wait(5)
            events.append(f"{name} out")

    def writer() -> None:
        with lock.exclusive():
            events.append("writer")

    readers = [threading.Thread(target=reader, args=(n,)) for n in ("a", "b")]
    for t in readers:
        t.start()
    while len(events) < 2:
        threading.Event().wait(0.01)
    w = threading.Thread(target=writer)
    w.start()
    w.join(0.2)
    assert w.is_alive() and "writer" not in events  # blocked while readers are in
    release.set()
    for t in [*readers, w]:
        t.join(5)
    assert events[-1] == "writer"


def test_a_waiting_writer_goes_before_new_readers():
    lock = ReadWriteLock()
    order: list[str] = []
    first_in, writer_waiting = threading.Event(), threading.Event()
    release = threading.Event()

    def first() -> None:
        with lock.shared():
            first_in.set()
            release.wait(5)

    def writer() -> None:
        writer_waiting.set()
        with lock.exclusive():
            order.append("writer")

    def late_reader() -> None:
        with lock.shared():
            order.append("late reader")

    t1 = threading.Thread(target=first)
    t1.start()
    first_in.wait(5)
    tw = threading.Thread(target=writer)
    tw.start()
    writer_waiting.wait(5)
    threading.Event().wait(0.05)  # the writer is now waiting inside exclusive()
    tr = threading.Thread(target=late_reader)
    tr.start()
    tr.join(0.1)
    assert tr.is_alive()  # held back by the waiting writer
    release.set()
    for t in (t1, tw, tr):
        t.join(5)
    assert order == ["writer", "late reader"]
