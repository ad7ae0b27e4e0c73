"""Whether the machine has cores to spare for one question: the CPU that other processes used
lately, from /proc/stat (Linux; elsewhere there is never headroom).

A question alone in a server runs its model call on every core (``RAG_ALONE_WIDE``). That
pays only when the other cores are idle: a first version that looked at its own process only
cost throughput beside a second server process (``rag serve --workers 2``, 8 clients: 84 and
99 q/s against 112 and 110 q/s narrow), since the other calls' threads then fight over the
same cores.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

STAT = Path("/proc/stat")
WINDOW = 0.1  # seconds between two readings of /proc/stat (~20 us each)
SPARE = 0.25  # cores others may use for the machine still to count as idle


class Headroom:
    def __init__(self, window: float = WINDOW, spare: float = SPARE, stat: Path = STAT):
        self.window, self.spare_cores, self.stat = window, spare, stat
        self._lock = threading.Lock()
        self._last: tuple[float, float, float] | None = None  # wall, machine busy, own CPU
        self._others = float("inf")  # cores other processes used in the last window

    def others(self) -> float:
        """Cores used by other processes over the last window (inf: not known)."""
        now = time.monotonic()
        with self._lock:
            if self._last is None or now - self._last[0] >= self.window:
                busy = machine_busy_seconds(self.stat)
                own = time.process_time()
                if busy is None:
                    self._others = float("inf")
                elif self._last is not None:
                    wall = now - self._last[0]
                    used = (busy - self._last[1]) - (own - self._last[2])
                    self._others = max(used, 0.0) / wall
                self._last = None if busy is None else (now, busy, own)
            return self._others

    def idle(self) -> bool:
        """Whether other processes left the machine (nearly) idle lately."""
        return self.others() < self.spare_cores


def machine_busy_seconds(stat: Path = STAT) -> float | None:
    """CPU seconds all cores have spent busy since boot (not idle, not waiting on I/O)."""
    try:
        with stat.open() as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    ticks = [int(x) for x in fields[1:]]
    busy = sum(ticks[:8]) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # less idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")
