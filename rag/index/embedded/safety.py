"""Disk-level safety of an index directory: what a failure really was, who holds the index,
and temporary files that no two writers share.

- ``storage_error`` maps SQLite's and the OS's errors onto the error hierarchy by what
  happened (a full disk, an I/O error, a lock held too long, a damaged file), so that no
  caller mistakes a transient failure for a damaged index.
- ``IndexLock``: every process that opens an index holds a shared ``flock`` on its ``.lock``
  file; a rebuild needs it exclusively, so it never runs under a live server or ingest.
  Holders are named from ``/proc/locks`` (Linux; elsewhere they go unnamed).
- ``temp_path`` gives each write its own temporary file (pid and a random part in the name),
  and ``clear_stale_temps`` removes those whose process is gone.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

from rag.core.errors import DiskFull, IndexBusy, IndexCorrupt, RagError, StorageError

# SQLite's primary result codes (the low byte of an extended code)
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 10, 11, 13, 14, 26
FULL_MB = 1.0  # free space below which an I/O error is taken for a full disk
LOCK_NAME = ".lock"
_TEMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")
# what an index keeps in its directory (store.py's layout, SQLite's side files, the lock and
# temporary files aside): a directory holding anything else is not an index's own
_INDEX_ENTRY = re.compile(r"^(?:rag\.sqlite3(?:-wal|-shm|-journal)?|manifest\.json|"
                          r"vectors-\d+\.faiss|lexical-\d+)$")


def free_mb(path: Path) -> float:
    """Free space (MB) on the file system holding ``path`` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free / 1e6
    except OSError:
        return float("nan")


def disk_full(where: Path) -> DiskFull:
    return DiskFull(f"the disk is full ({free_mb(where):.0f} MB free at {where}); nothing was "
                    "lost; free space and re-run")


def holders(path: Path) -> list[int]:
    """Other processes holding a lock (flock or POSIX) on ``path``, from /proc/locks."""
    try:
        inode = os.stat(path).st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    found = set()
    for line in lines:
        parts = line.split()
        if "->" in parts:  # a waiter, not a holder
            continue
        try:
            pid, where = int(parts[4]), parts[5]
        except (IndexError, ValueError):
            continue
        if where.rsplit(":", 1)[-1] == str(inode) and pid != os.getpid():
            found.add(pid)
    return sorted(found)


def _named(pids: list[int]) -> str:
    return f" (pid {', '.join(map(str, pids))})" if pids else ""


def storage_error(exc: BaseException, where: Path) -> RagError | None:
    """What ``exc`` (a SQLite or OS error met in the index at ``where``) means, as one of our
    errors; None if it is none of these."""
    where = Path(where)
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        what = str(exc)
        if code == SQLITE_FULL or (code == SQLITE_IOERR and free_mb(where) < FULL_MB):
            return disk_full(where)
        if code in (SQLITE_BUSY, SQLITE_LOCKED):
            pids = holders(where / "rag.sqlite3") if where.is_dir() else []
            return IndexBusy(f"another process is writing to the index at {where}"
                             f"{_named(pids)} and kept it locked; nothing was lost; try again "
                             "when it is done")
        if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
            return IndexCorrupt(f"the index at {where} is damaged (SQLite: {what}); rebuild it "
                                f"with: rag ingest SOURCES... --index {where} --rebuild")
        if code in (SQLITE_IOERR, SQLITE_READONLY, SQLITE_PERM, SQLITE_CANTOPEN):
            return StorageError(f"the index at {where} cannot be read or written (SQLite: "
                                f"{what}); nothing was lost; check the disk and re-run")
        return StorageError(f"the index at {where} failed (SQLite: {what})")
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return disk_full(where)
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO):
            return StorageError(f"cannot write to {where} ({exc.strerror}); nothing was lost")
    return None


def temp_path(directory: Path, name: str, suffix: str = ".tmp") -> Path:
    """A new, unique temporary file beside ``directory / name`` (this process's pid in its name,
    for ``clear_stale_temps``)."""
    fd, path = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=suffix, dir=directory)
    os.close(fd)
    return Path(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupted_swap(index_dir: Path) -> Path | None:
    """The old index a process killed mid-swap left aside (``.<name>.<pid>.old.tmp`` beside
    a missing ``index_dir``: the swap's two renames without an atomic exchange), if any."""
    index_dir = Path(index_dir)
    if index_dir.exists():
        return None
    pattern = re.compile(rf"\.{re.escape(index_dir.name)}\.(\d+)\.old\.tmp")
    try:
        entries = sorted(index_dir.parent.iterdir())
    except OSError:
        return None
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m and not _alive(int(m.group(1))) and entry.is_dir():
            return entry
    return None


# what a directory may hold beside its index, and a rebuild carries over (the repository's
# index/README.md keeps the default index's directory in git)
KEPT = ("README.md",)


def foreign_entries(directory: Path) -> list[str]:
    """The names in ``directory`` that are neither an index's own nor ``KEPT`` (sorted; none
    if it is missing): an index is never created among, or rebuilt over, other files."""
    directory = Path(directory)
    try:
        names = [entry.name for entry in directory.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise storage_error(exc, directory) or StorageError(
            f"cannot read {directory} ({exc.strerror})") from exc
    return sorted(n for n in names if not (_INDEX_ENTRY.match(n) or _TEMP.match(n)
                                           or n == LOCK_NAME or n in KEPT))


def require_own_directory(index_dir: Path, doing: str) -> None:
    """Refuse to ``doing`` (create, rebuild) an index at ``index_dir`` when that is a file or
    a directory holding other files: a rebuild replaces the whole directory."""
    index_dir = Path(index_dir)
    if index_dir.exists() and not index_dir.is_dir():
        raise RagError(f"cannot {doing} an index at {index_dir}/: it is a file, not a "
                       "directory; nothing was changed")
    for parent in index_dir.parents:
        if parent.exists():
            if not parent.is_dir():
                raise RagError(f"cannot {doing} an index at {index_dir}/: {parent} is a "
                               "file, not a directory; nothing was changed")
            break
    others = foreign_entries(index_dir)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3
                                         else "")
        raise RagError(f"cannot {doing} an index at {index_dir}/: the directory holds files "
                       f"that are not an index's ({shown}); nothing was changed; give a new "
                       "or empty directory")


def clear_stale_temps(directory: Path, prefix: str = ".") -> list[Path]:
    """Remove the temporary files and folders (``temp_path``'s names, starting with
    ``prefix``) of processes that are gone: a kill or a full disk during a save left them.
    Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name) if entry.name.startswith(prefix) else None
        if m is None or _alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a unique temporary file and a rename."""
    tmp = temp_path(path.parent, path.name)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class IndexLock:
    """``<index>/.lock``: shared by every process that has the index open, exclusive for a
    rebuild. Non-blocking both ways: the caller is told who holds it instead of waiting."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None

    def _open(self) -> int | None:
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            try:
                return os.open(self.path, flags, 0o644)
            except OSError:
                continue
        return None  # a read-only place without a lock file: nothing to coordinate with

    def shared(self) -> None:
        """Hold the lock shared; IndexBusy if a rebuild holds it."""
        self._take(fcntl.LOCK_SH, lambda pids: IndexBusy(
            f"the index at {self.path.parent} is being rebuilt{_named(pids)}; try again when "
            "that is done"))

    def exclusive(self) -> None:
        """Hold the lock alone; IndexBusy naming the processes that have the index open."""
        self._take(fcntl.LOCK_EX, lambda pids: IndexBusy(
            f"another process has the index at {self.path.parent} open{_named(pids)}; stop it "
            "(a server or an ingest) before rebuilding; nothing was changed"))

    def _take(self, mode: int, busy) -> None:
        if self._fd is None:
            self._fd = self._open()
        if self._fd is None:
            return
        try:
            fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy(holders(self.path)) from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux ``renameat2(RENAME_EXCHANGE)``): a reader sees
    one or the other, never neither. False where the call is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), RENAME_EXCHANGE)
    if done != 0:
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EINVAL):
            return False
        raise OSError(err, os.strerror(err), str(a))
    fsync_dir(Path(a).parent)
    return True
