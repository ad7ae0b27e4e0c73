"""rag/headroom.py: the CPU other processes use, read from a /proc/stat file."""

from __future__ import annotations

import os
import time

from rag.headroom import Headroom, machine_busy_seconds


def write_stat(path, busy_ticks: int, idle_ticks: int) -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice
    path.write_text(f"cpu  {busy_ticks} 0 0 {idle_ticks} 7 0 0 0 0 0\n"
                    f"cpu0 {busy_ticks} 0 0 {idle_ticks} 7 0 0 0 0 0\nintr 1 2 3\n")


def test_busy_seconds_leave_out_idle_and_iowait(tmp_path):
    stat = tmp_path / "stat"
    write_stat(stat, 500, 900)
    assert machine_busy_seconds(stat) == 500 / os.sysconf("SC_CLK_TCK")
    assert machine_busy_seconds(tmp_path / "missing") is None
    (tmp_path / "odd").write_text("nothing here\n")
    assert machine_busy_seconds(tmp_path / "odd") is None


def test_others_load_is_the_machine_less_this_process(tmp_path):
    stat = tmp_path / "stat"
    hz = os.sysconf("SC_CLK_TCK")
    write_stat(stat, 1000, 5000)
    room = Headroom(window=0.02, stat=stat)
    assert room.others() == float("inf") and not room.idle()  # one reading: not known yet
    time.sleep(0.05)
    write_stat(stat, 1000 + 100 * hz, 5000)  # 100 busy seconds since: far past two cores
    assert room.others() > 50 and not room.idle()
    time.sleep(0.05)
    write_stat(stat, 1000 + 100 * hz, 6000)  # nobody busy since
    assert room.others() == 0.0 and room.idle()
    stat.unlink()  # unreadable: never idle (and so never wide)
    time.sleep(0.05)
    assert not room.idle()


def test_a_reading_is_kept_for_its_window(tmp_path):
    stat = tmp_path / "stat"
    write_stat(stat, 1000, 5000)
    room = Headroom(window=60, stat=stat)
    room.others()
    write_stat(stat, 10**9, 5000)
    assert room.others() == float("inf")  # the file is not read again within the window
