"""Searches while the FAISS index is written: FAISS releases the GIL, so a search that ran
during an add or a remove read memory the write had moved, and the process crashed
(SIGSEGV, every run of this script before the index took a readers-writer lock). Run in a
subprocess, so that a regression fails this test instead of killing the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap

RACE = textwrap.dedent("""
    import threading
    import numpy as np
    from rag.index.embedded.vectors import VectorIndex

    rng = np.random.default_rng(0)
    dim = 384

    def vecs(n):
        v = rng.standard_normal((n, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    q, searched = vecs(8), 0
    for _ in range(5):  # a small index growing fast: its storage moves at every doubling
        ix = VectorIndex(dim)
        ix.add(np.arange(10), vecs(10))
        kept = set(range(10))
        done = False

        def reader():
            global searched
            n = 0
            while not done:
                ix.search(q[n % 8], 10, np.arange(0, 30000, 2) if n % 2 else None)
                n += 1
            searched += n

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        for b in range(1, 200):
            ix.add(np.arange(b * 100, b * 100 + 100), vecs(100))
            kept |= set(range(b * 100, b * 100 + 100))
            if b % 3 == 0:
                ix.remove(np.arange(b * 100 - 300, b * 100 - 250))
                kept -= set(range(b * 100 - 300, b * 100 - 250))
        done = True
        for t in threads:
            t.join()
        assert len(ix) == len(kept), len(ix)
    print(searched)
""")


def test_searches_during_adds_and_removes_do_not_crash():
    proc = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert int(proc.stdout) > 100  # the searches really ran alongside the writes
