"""Starting a local Ray for `rag ingest --ray local` survives a node that does not come up.

Ray's own start gives up when its node has not registered within 30 s and leaves the
processes it started running (seen once in CI). Here the registration check is made to fail
at once, with the real Ray processes started, so the retry and the clean-up are exercised for
real without waiting out Ray's 30 s.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest
import ray
import ray._private.services as ray_services

from rag.core.errors import RagError
from rag.ingest.ray import LOCAL_RAY_ATTEMPTS, ray_session


def ray_processes() -> set[int]:
    """Live (not zombie) processes of Ray's: run from the ray package (its servers) or
    renamed "ray::..." (its agents and workers) that this process started or that lost
    their parent (a killed raylet's children go to init). Another test process's running
    Ray (pytest-xdist's other worker) is not this test's."""
    parent, ray_pids = {}, set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:  # the process ended while we looked
            continue
        pid = int(proc.name)
        parent[pid] = int(fields[1])
        if fields[0] != "Z" and (b"/ray/" in cmdline or cmdline.startswith(b"ray::")):
            ray_pids.add(pid)

    def ours(pid: int) -> bool:
        if parent.get(pid) == 1:
            return True
        while pid in parent and pid > 1:
            pid = parent[pid]
            if pid == os.getpid():
                return True
        return False

    return {pid for pid in ray_pids if ours(pid)}


def left_behind(before: set[int], timeout: float = 30) -> set[int]:
    """The Ray processes started since ``before`` that are still running after ``timeout``
    (processes of another Ray on the machine that end meanwhile do not count)."""
    deadline = time.monotonic() + timeout
    while (new := ray_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    return new


@pytest.fixture
def failing_registration(monkeypatch):
    """Make the first ``failures`` node-registration checks raise, as a timed-out start does."""
    real = ray_services.get_node
    calls = {"failures": 0, "seen": 0}

    def get_node(*args, **kwargs):
        calls["seen"] += 1
        if calls["seen"] <= calls["failures"]:
            raise Exception("The current node timed out during startup.")  # as Ray raises it
        return real(*args, **kwargs)

    monkeypatch.setattr(ray_services, "get_node", get_node)
    return calls


def test_a_failed_start_is_cleaned_up_and_retried(failing_registration):
    assert not ray.is_initialized()
    before = ray_processes()
    failing_registration["failures"] = 1
    with ray_session(None) as started:
        assert started and ray.is_initialized()
        assert ray.get(ray.put(41)) + 1 == 42  # the second start is a working Ray
    assert not ray.is_initialized()
    gc.collect()  # a Popen of a still-running process would warn here (an error in pytest)
    assert not left_behind(before)


def test_a_start_that_keeps_failing_is_one_clear_error(failing_registration):
    before = ray_processes()
    failing_registration["failures"] = LOCAL_RAY_ATTEMPTS
    expected = rf"could not start a local Ray \({LOCAL_RAY_ATTEMPTS} attempts\).*logs"
    with pytest.raises(RagError, match=expected), ray_session(None):
        pytest.fail("no Ray should have started")
    assert not ray.is_initialized()
    gc.collect()
    assert not left_behind(before)
