"""The index on disk: SQLite is the source of truth, FAISS a derived, rebuildable file.

Layout of an index directory::

    rag.sqlite3              documents, chunks, embeddings (BLOBs), tombstones, meta (WAL mode)
    vectors-<generation>.faiss   FAISS index reflecting the store at that generation
    manifest.json            human-readable copy of the meta table (the table is the truth)

Every write is one SQLite transaction that bumps ``generation``. Chunks remember the
generation that added them and deleted chunks leave a tombstone, so a FAISS file of an
older generation is brought up to date from the delta instead of being rebuilt; a missing
or unreadable FAISS file is rebuilt from the stored embeddings, never by re-embedding.
A crash at any moment leaves the last committed state, which opens and serves.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.documents import Filters, domain_of
from rag.core.errors import IndexCorrupt, NotFound, RagError
from rag.index.base import FORMAT_VERSION, DocumentWrite, IndexParams, Ranking, check_params
from rag.index.embedded import sentences
from rag.index.embedded import vector_files as vectorfiles
from rag.index.embedded.allowed import AllowedIds
from rag.index.embedded.bm25.segments import LexicalFiles, LexicalSegments, LexicalView
from rag.index.embedded.filters import filter_sql
from rag.index.embedded.safety import (
    KEPT,
    IndexLock,
    clear_stale_temps,
    exchange,
    foreign_entries,
    fsync_dir,
    interrupted_swap,
    require_own_directory,
    storage_error,
    write_atomic,
)
from rag.index.embedded.schema import SCHEMA, UPGRADE
from rag.index.embedded.vectors import IVF_MIN, VectorIndex

DB_NAME = "rag.sqlite3"
log = logging.getLogger(__name__)
# an error while opening a connection that a read-only, immutable open gets past (the disk is
# too full for SQLite's shared-memory file, which a reader creates when no one has the index
# open); used only when the WAL holds nothing, so no committed write is missed
_READ_ONLY_FALLBACK = ("SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_SHMOPEN", "SQLITE_IOERR_SHMMAP",
                       "SQLITE_FULL", "SQLITE_CANTOPEN", "SQLITE_READONLY")


ALLOWED_CACHE = 512  # filter -> allowed chunk ids answers kept


@contextmanager
def _removed_on_failure(path: Path) -> Iterator[None]:
    """Remove the directory ``path`` (an index being built) if the block fails."""
    try:
        yield
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


class Store:
    """One index directory. Thread-safe for readers; writes are serialised by SQLite."""

    def __init__(self, index_dir: Path):
        self.dir = Path(index_dir)
        self.location = str(self.dir)
        self.db_path = self.dir / DB_NAME
        self._local = threading.local()
        # every thread's connection, so that close() closes them all (thread id -> thread)
        self._conns: dict[int, tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = {}
        self._conns_lock = threading.Lock()
        self._vec_lock = threading.Lock()
        self._vectors: VectorIndex | None = None
        self._vectors_gen = -1
        self._files = vectorfiles.VectorFiles(self.dir)
        self._lexical = LexicalSegments(self._read, self.close_connection,
                                        LexicalFiles(self.dir))
        self._allowed: dict[Filters, tuple[int, np.ndarray]] = {}  # at a generation
        self._lock = IndexLock(self.dir)

    # ------------------------------------------------------------ opening

    @classmethod
    def exists(cls, index_dir: Path) -> bool:
        return (Path(index_dir) / DB_NAME).is_file()

    @classmethod
    def open(cls, index_dir: Path, params: IndexParams | None = None, *,
             create: bool = False, check_chunking: bool = False) -> Store:
        """Open (or create) an index, refusing one built with another model or format.
        The process holds the index's lock, shared, until ``close`` (a rebuild needs it
        alone); temporary files left by processes that are gone are removed."""
        index_dir = Path(index_dir)
        cls._recover_swap(index_dir)
        if not cls.exists(index_dir):
            if not create:
                raise NotFound(f"no index at {index_dir}/; build one with: "
                               f"rag ingest SOURCES... --index {index_dir}")
            if params is None:
                raise ValueError("creating an index needs its parameters")
            require_own_directory(index_dir, "create")
            try:
                index_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise storage_error(exc, index_dir) or exc from exc
        store = cls(index_dir)
        store._lock.shared()
        try:
            clear_stale_temps(index_dir)
            if create or check_chunking:  # writers make sure the schema exists; readers never lock
                with store._write() as db:
                    store._create_schema(db)
                    if store._meta(db).get("format_version") is None and params is not None:
                        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                       [*params.as_meta().items(), ("generation", "0")])
            store.check(params, check_chunking=check_chunking)
            if create or check_chunking:
                store.write_manifest()
        except BaseException:
            store.close()
            raise
        return store

    @staticmethod
    def _create_schema(db: sqlite3.Connection) -> None:
        """The tables (if missing), and a format-1 index brought to this format."""
        for statement in (SCHEMA + UPGRADE).split(";"):
            if statement.strip():
                db.execute(statement)
        if db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone():
            db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'",
                       (str(FORMAT_VERSION),))

    @classmethod
    @contextmanager
    def rebuilding(cls, index_dir: Path, params: IndexParams) -> Iterator[Path]:
        """A new, empty index to build into (``rag ingest --rebuild``), swapped in for
        ``index_dir`` when the block succeeds; on failure it is removed and the old index is
        left as it was. The old index is never emptied in place: it stays whole until the new
        one is complete, and it is refused while another process has it open (the lock names
        it). Embeddings stored with the same model are copied over, so rebuilding re-embeds
        only new texts. A damaged old index (SQLite says so), or one that other files joined
        during the build, is kept aside, not deleted; ``KEPT`` files are carried over. A
        symbolic link is followed: the directory it points to is rebuilt."""
        index_dir = Path(index_dir).resolve()
        cls._recover_swap(index_dir)  # before the clean-up below could delete it
        require_own_directory(index_dir, "rebuild")
        parent = index_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        clear_stale_temps(parent, f".{index_dir.name}.")  # rebuilds a kill interrupted
        lock = IndexLock(index_dir) if index_dir.is_dir() else None
        if lock is not None:
            lock.exclusive()
        try:
            new = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.{os.getpid()}.",
                                        suffix=".tmp", dir=parent))
            with _removed_on_failure(new):
                damaged = cls._start_rebuild(index_dir, new, params)
                yield new
                for name in KEPT:
                    if (index_dir / name).is_file():
                        shutil.copy2(index_dir / name, new / name)
            cls._swap_in(new, index_dir, damaged)  # past this point ``new`` may be the old one
        finally:
            if lock is not None:
                lock.release()

    @classmethod
    def _start_rebuild(cls, old_dir: Path, new: Path, params: IndexParams) -> bool:
        """Create the new index, with the old one's embeddings of the same model; True if the
        old index is damaged (SQLite reports corruption). Any other failure to read it (a full
        disk, an I/O error, a lock) is raised: nothing is rebuilt over an index that may be
        fine."""
        store = cls.open(new, params, create=True, check_chunking=True)
        try:
            if not cls.exists(old_dir):
                return False
            try:
                old = sqlite3.connect(f"file:{old_dir / DB_NAME}?mode=ro", uri=True, timeout=60)
                try:
                    meta = dict(old.execute("SELECT key, value FROM meta"))
                    if meta.get("model") != params.model:
                        return False
                    rows = old.execute("SELECT hash, vector FROM embeddings")
                    while batch := rows.fetchmany(10_000):
                        with store._write() as db:
                            db.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?)",
                                           batch)
                finally:
                    old.close()
            except sqlite3.Error as exc:
                error = storage_error(exc, old_dir)
                if isinstance(error, IndexCorrupt):
                    log.warning("%s", error)
                    return True
                raise error or exc from exc
            return False
        finally:
            store.close()

    @staticmethod
    def _recover_swap(index_dir: Path) -> None:
        """Put back the old index a process killed between a swap's two renames left aside."""
        left = interrupted_swap(index_dir)
        if left is not None and Store.exists(left):
            os.rename(left, index_dir)
            fsync_dir(index_dir.parent)
            log.warning("the index at %s was put back from %s, where a rebuild killed "
                        "mid-swap had left it", index_dir, left.name)

    @staticmethod
    def _swap_in(new: Path, index_dir: Path, damaged: bool) -> None:
        """Put the complete index ``new`` where ``index_dir`` is, in one step where the OS
        can (the old one is then removed, or kept aside if it was damaged). If the swap
        fails, the old index is where it was and the new one is removed."""
        if not index_dir.exists():
            with _removed_on_failure(new):
                os.rename(new, index_dir)
            fsync_dir(index_dir.parent)
            return
        if exchange(new, index_dir):
            old = new
        else:  # two renames: between them the index is briefly absent
            old = index_dir.with_name(f".{index_dir.name}.{os.getpid()}.old.tmp")
            with _removed_on_failure(new):
                os.rename(index_dir, old)
            try:
                os.rename(new, index_dir)
            except BaseException:
                os.rename(old, index_dir)  # the old index back where it was
                shutil.rmtree(new, ignore_errors=True)
                raise
            fsync_dir(index_dir.parent)
        joined = foreign_entries(old)  # files someone put there while the index was built
        if damaged or joined:  # kept under a name no clean-up of temporary files touches
            what = "damaged" if damaged else "replaced"
            aside = index_dir.with_name(
                f"{index_dir.name}.{what}-{datetime.now(UTC):%Y%m%dT%H%M%S}")
            os.rename(old, aside)
            log.warning("the %s index was kept at %s%s", what, aside,
                        f" (it holds {', '.join(joined[:3])})" if joined else "")
        else:
            shutil.rmtree(old, ignore_errors=True)

    def check(self, params: IndexParams | None, check_chunking: bool = False) -> None:
        check_params(self.meta(), params, f"{self.dir}/", check_chunking)

    # ------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise storage_error(exc, self.dir) or exc from exc
            self._local.conn = conn
            self._register(conn)
        return conn

    def _register(self, conn: sqlite3.Connection) -> None:
        """Keep this thread's new connection for ``close``; close those of threads that are
        gone (a long-lived server's worker threads come and go)."""
        with self._conns_lock:
            for ident, (thread, old) in list(self._conns.items()):
                alive = thread()
                if alive is None or not alive.is_alive():
                    old.close()
                    del self._conns[ident]
            self._conns[threading.get_ident()] = (weakref.ref(threading.current_thread()), conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when the write is acknowledged (NORMAL survives a
            # process crash but may lose the last commits in a power loss)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _read_only_connection(self, exc: sqlite3.Error) -> sqlite3.Connection | None:
        """A read-only, immutable connection for one read when a normal one cannot be had
        because the disk is full (see ``_READ_ONLY_FALLBACK``); None if that would be wrong
        (the WAL holds commits that an immutable reader would not see)."""
        if getattr(exc, "sqlite_errorname", "") not in _READ_ONLY_FALLBACK:
            return None
        wal = self.db_path.with_name(DB_NAME + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            return None
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro&immutable=1", uri=True,
                               isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    class _Txn:
        """A transaction on this thread's connection. SQLite's and the OS's errors leave it
        as the error hierarchy's (``storage_error``); a failed write is rolled back only if
        SQLite has not already done so (a rollback then would hide the real error)."""

        def __init__(self, store: Store, mode: str):
            self.store, self.mode = store, mode
            self.conn: sqlite3.Connection | None = None
            self.own = False  # a one-off read-only connection, closed at the end

        def __enter__(self) -> sqlite3.Connection:
            try:
                self.conn = self.store._conn()
            except RagError as exc:
                cause = exc.__cause__
                fallback = (self.mode == "DEFERRED" and isinstance(cause, sqlite3.Error)
                            and self.store._read_only_connection(cause))
                if not fallback:
                    raise
                self.conn, self.own = fallback, True
            try:
                self.conn.execute(f"BEGIN {self.mode}")
            except sqlite3.Error as exc:
                self._done()
                raise storage_error(exc, self.store.dir) or exc from exc
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            assert self.conn is not None
            try:
                if exc_type is None:
                    try:
                        self.conn.execute("COMMIT")
                    except sqlite3.Error as error:
                        self._rollback()
                        raise storage_error(error, self.store.dir) or error from error
                    return
                self._rollback()
                if isinstance(exc, sqlite3.Error | OSError):
                    mapped = storage_error(exc, self.store.dir)
                    if mapped is not None:
                        raise mapped from exc
            finally:
                self._done()

        def _rollback(self) -> None:
            assert self.conn is not None
            if self.conn.in_transaction:
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")

        def _done(self) -> None:
            if self.own and self.conn is not None:
                self.conn.close()

    def _write(self) -> _Txn:
        return self._Txn(self, "IMMEDIATE")

    def _read(self) -> _Txn:
        return self._Txn(self, "DEFERRED")

    def close_connection(self) -> None:
        """Close this thread's connection (a thread that is done with the index)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._conns_lock:
                self._conns.pop(threading.get_ident(), None)

    def close(self) -> None:
        """Close every thread's connection and let go of the index's lock."""
        self._local.conn = None
        with self._conns_lock:
            conns = [conn for _, conn in self._conns.values()]
            self._conns.clear()
        for conn in conns:
            conn.close()
        self._lock.release()

    # ------------------------------------------------------------ meta

    @staticmethod
    def _meta(db: sqlite3.Connection) -> dict[str, str]:
        return {r["key"]: r["value"] for r in db.execute("SELECT key, value FROM meta")}

    def meta(self) -> dict[str, str]:
        with self._read() as db:
            return self._meta(db)

    @property
    def generation(self) -> int:
        try:
            conn = self._conn()
        except RagError:  # no connection of our own (a full disk): a read-only one
            with self._read() as db:
                row = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        else:  # a single statement is its own read transaction
            row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def write_manifest(self) -> None:
        """A human-readable copy of the meta table and counts (each writer its own temporary
        file: threads that shared one name found it renamed away by another)."""
        manifest = {**self.meta(), **self.counts()}
        data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        try:
            write_atomic(self.dir / "manifest.json", data)
        except OSError as exc:
            raise storage_error(exc, self.dir) or exc from exc

    def counts(self) -> dict[str, int]:
        with self._read() as db:
            docs = db.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            embs = db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        return {"documents": docs, "chunks": chunks, "embeddings": embs}

    # ------------------------------------------------------------ writes

    def content_hashes(self) -> dict[str, str]:
        with self._read() as db:
            return {r[0]: r[1] for r in db.execute("SELECT url, content_hash FROM documents")}

    def cached_embeddings(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        with self._read() as db:
            for i in range(0, len(wanted), 500):
                part = wanted[i:i + 500]
                marks = ",".join("?" * len(part))
                for h, blob in db.execute(
                        f"SELECT hash, vector FROM embeddings WHERE hash IN ({marks})", part):
                    found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def write(self, docs: Sequence[DocumentWrite], embeddings: dict[str, np.ndarray],
              delete_urls: Sequence[str] = ()) -> int:
        """Replace/insert ``docs`` and delete ``delete_urls`` in one transaction."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._write() as db:
            gen = int(self._meta(db)["generation"]) + 1
            db.executemany("INSERT OR IGNORE INTO embeddings(hash, vector) VALUES (?, ?)",
                           [(h, np.asarray(v, np.float32).tobytes())
                            for h, v in embeddings.items()])
            ids = [d.article.document_id for d in docs]
            self._delete(db, gen, "document_id", ids)
            self._delete(db, gen, "url", list(delete_urls))
            for d in docs:
                a = d.article
                db.execute(
                    "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (a.document_id, a.url, a.title, a.author,
                     a.published_date.isoformat() if a.published_date else None,
                     a.published_at, a.source_name, domain_of(a.url), a.summary, a.highlights,
                     a.category, a.body, d.hash(), a.origin, now))
                db.executemany("INSERT INTO document_authors VALUES (?, ?)",
                               [(a.document_id, name) for name in a.authors])
                db.executemany(
                    "INSERT INTO chunks(document_id, ordinal, char_start, char_end, n_tokens, "
                    "text, embed_hash, generation) VALUES (?,?,?,?,?,?,?,?)",
                    [(a.document_id, c.ordinal, c.char_start, c.char_end, c.n_tokens, c.text, h,
                      gen) for c, h in zip(d.chunks, d.embed_hashes, strict=True)])
                sentences.index_document(db, a)
            db.execute("UPDATE meta SET value=? WHERE key='generation'", (str(gen),))
        return gen

    @staticmethod
    def _delete(db: sqlite3.Connection, gen: int, column: str, values: list[str]) -> None:
        for i in range(0, len(values), 500):
            part = values[i:i + 500]
            marks = ",".join("?" * len(part))
            where = (f"document_id IN (SELECT document_id FROM documents "
                     f"WHERE {column} IN ({marks}))")
            db.execute(f"INSERT INTO tombstones SELECT id, ? FROM chunks WHERE {where}",
                       [gen, *part])
            sentences.unindex_documents(db, f"{column} IN ({marks})", part)
            db.execute(f"DELETE FROM chunks WHERE {where}", part)
            db.execute(f"DELETE FROM documents WHERE {column} IN ({marks})", part)

    def delete(self, urls: Sequence[str]) -> int:
        return self.write([], {}, delete_urls=urls)

    def delete_document(self, document_id: str) -> str:
        """Delete one article by id in one transaction; its URL, or NotFound if there is none
        (also when another writer deleted it first: each deletion is answered once)."""
        with self._write() as db:
            row = db.execute("SELECT url FROM documents WHERE document_id = ?",
                             (document_id,)).fetchone()
            if row is None:
                raise NotFound(f"no document with id {document_id!r}")
            gen = int(self._meta(db)["generation"]) + 1
            self._delete(db, gen, "document_id", [document_id])
            db.execute("UPDATE meta SET value=? WHERE key='generation'", (str(gen),))
        return row[0]

    def urls(self) -> list[str]:
        with self._read() as db:
            return [r[0] for r in db.execute("SELECT url FROM documents ORDER BY url")]

    # ------------------------------------------------------------ vectors

    def vectors(self) -> tuple[VectorIndex, int]:
        """The FAISS index at the store's current generation, caught up or rebuilt as needed.
        A saved file older than the store (a write whose save failed, a killed ingest) is
        saved again once caught up, so later opens need not repeat the work."""
        with self._vec_lock:
            with self._read() as db:
                gen = int(self._meta(db)["generation"])
                if self._vectors is not None and self._vectors_gen == gen:
                    return self._vectors, gen
                index, base = self._vectors, self._vectors_gen
                loaded = False
                if index is None:
                    index, base = self._files.load_latest(int(self._meta(db)["dim"]), gen)
                    loaded = True
                vectorfiles.catch_up(db, index, base, gen)
                self._vectors, self._vectors_gen = index, gen
            if loaded and base < gen:
                self._save_quietly(index, gen)
            return index, gen

    def _save_quietly(self, index: VectorIndex, gen: int) -> None:
        """Save a caught-up index (under ``_vec_lock``); a failure is logged, not raised: the
        store is the truth, and the next open catches up again."""
        try:
            self._files.save(index, gen)
        except (OSError, RagError) as exc:
            log.warning("the vectors were not saved (%s); they are caught up again on the "
                        "next open", storage_error(exc, self.dir) if isinstance(exc, OSError)
                        else exc)

    def save_vectors(self, ivf_min: int = IVF_MIN) -> Path:
        """Persist the current FAISS index, tagged with its generation; drop older files.
        An exact index that has grown to ``ivf_min`` vectors is saved as an IVF index. The
        save holds the vector lock: a concurrent catch-up must not change the index while it
        is written."""
        index, gen = self.vectors()
        with self._vec_lock:
            converted = index.kind == "flat" and len(index) >= ivf_min
            if converted:
                index = index.to_ivf()
                if self._vectors_gen == gen:
                    self._vectors = index
            elif self._vectors is not None and self._vectors_gen != gen:  # caught up further
                index, gen = self._vectors, self._vectors_gen  # meanwhile: save that
            try:
                path = self._files.save(index, gen, replace=converted)
            except OSError as exc:
                raise storage_error(exc, self.dir) or exc from exc
        self.write_manifest()
        return path

    def vectors_stale(self) -> bool:
        """Whether the newest saved FAISS file is older than the store."""
        return self.saved_generation() < self.generation

    def saved_generation(self) -> int:
        """The generation of the newest saved FAISS file (0 if none)."""
        gens = self._files.generations()
        return gens[-1] if gens else 0

    # ------------------------------------------------------------ reads

    def allowed_chunk_ids(self, filters: Filters) -> np.ndarray | None:
        """Chunk ids passing ``filters``, sorted; None when there is nothing to filter. The
        last few hundred answers are kept (hints repeat the same publishers and dates) and
        brought up to a later generation by its chunks alone: a write replaces an article's
        chunks (tombstones for the old, new ids for the new), so what changed since is the
        chunks written since, which pass or not, and those deleted since."""
        if filters.is_empty():
            return None
        kept = self._allowed.get(filters)
        if kept is not None and kept[0] == self.generation:
            return kept[1]
        where, args = filter_sql(filters)
        with self._read() as db:
            gen = int(self._meta(db)["generation"])
            if kept is not None and kept[0] < gen:  # < 1 ms at a million chunks
                new = [r[0] for r in db.execute(  # each new chunk's article looked up
                    "SELECT c.id FROM chunks c INDEXED BY chunks_generation JOIN documents d "
                    f"ON d.document_id = c.document_id WHERE c.generation > ? AND {where}",
                    (kept[0], *args))]
                gone = vectorfiles.tombstoned_since(db, kept[0])
                ids = np.union1d(np.setdiff1d(kept[1], gone), np.asarray(new, dtype=np.int64))
            else:  # articles first: a join scanned every chunk (0.7 s at a million chunks;
                # 0.1-0.2 s this way)
                ids = np.sort(np.asarray([r[0] for r in db.execute(
                    "SELECT c.id FROM chunks c WHERE c.document_id IN (SELECT d.document_id "
                    f"FROM documents d WHERE {where})", args)], dtype=np.int64))
        ids = AllowedIds.of(ids, (filters, gen))
        if len(self._allowed) >= ALLOWED_CACHE and filters not in self._allowed:
            self._allowed.clear()
        self._allowed[filters] = (gen, ids)
        return ids

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters) -> Ranking:
        """Top ``k`` (chunk id, cosine) among the chunks passing ``filters``."""
        index, _ = self.vectors()
        scores, ids = index.search(vector, k, self.allowed_chunk_ids(filters))
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]

    def keyword_ranking(self, question: str, k: int, filters: Filters) -> Ranking:
        """Top ``k`` chunks by BM25 over their text, title and metadata."""
        return self.lexical().search(question, k, self.allowed_chunk_ids(filters))

    def sentence_ranking(self, question: str, k: int, filters: Filters) -> Ranking:
        """Top ``k`` chunks by the BM25 score of the best sentence they hold."""
        return self.lexical().sentence_search(question, k, self.allowed_chunk_ids(filters))

    def lexical(self) -> LexicalView:
        """The in-memory BM25 index (bm25s) at the store's current generation: built on first
        use, then caught up with each write by a small segment, and rebuilt in a background
        thread when the segments grow (bm25/segments.py)."""
        return self._lexical.view(self.generation)

    def sources(self) -> list[str]:
        """Distinct publisher names (cached per generation)."""
        gen = self.generation
        cached = getattr(self, "_sources", None)
        if cached is None or cached[0] != gen:
            with self._read() as db:
                names = [r[0] for r in db.execute("SELECT DISTINCT source FROM documents")]
            cached = self._sources = (gen, names)
        return cached[1]

    def chunk_documents(self, ids: Sequence[int]) -> dict[int, str]:
        if not len(ids):
            return {}
        marks = ",".join("?" * len(ids))
        with self._read() as db:
            return {r[0]: r[1] for r in db.execute(
                f"SELECT id, document_id FROM chunks WHERE id IN ({marks})", [int(i) for i in ids])}

    def chunk_rows(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Chunk text, offsets and document metadata for ``ids`` (missing ids are absent),
        with ``sentences``: the article's sentence spans (as ingest split the whole body)
        inside each chunk, relative to its text, so a highlight needs no splitting."""
        if not len(ids):
            return {}
        marks = ",".join("?" * len(ids))
        args = [int(i) for i in ids]
        with self._read() as db:
            rows = {r["id"]: {**r, "sentences": []} for r in db.execute(
                "SELECT c.id, c.document_id, c.ordinal, c.char_start, c.char_end, c.text, "
                "d.title, d.url, d.author, d.published_date, d.source FROM chunks c "
                f"JOIN documents d ON d.document_id = c.document_id WHERE c.id IN ({marks})",
                args)}
            for cid, start, end in db.execute(
                    "SELECT c.id, max(s.char_start, c.char_start) - c.char_start, "
                    "min(s.char_end, c.char_end) - c.char_start FROM chunks c "
                    "JOIN sentences s ON s.document_id = c.document_id "
                    f"WHERE c.id IN ({marks}) AND s.char_end > c.char_start "
                    "AND s.char_start < c.char_end ORDER BY c.id, s.char_start", args):
                if cid in rows:
                    rows[cid]["sentences"].append((start, end))
        return rows

    def problems(self) -> list[str]:
        """A full consistency check (``rag stats --check``): SQLite's own integrity check,
        every chunk an exact span of its article with its embedding, the keyword indexes and
        the FAISS index holding exactly the chunks. Empty when all is well."""
        found: list[str] = []
        with self._read() as db:
            found += [f"sqlite: {r[0]}" for r in db.execute("PRAGMA integrity_check")
                      if r[0] != "ok"]
            for cid, doc, start, end, text, body in db.execute(
                    "SELECT c.id, c.document_id, c.char_start, c.char_end, c.text, d.body "
                    "FROM chunks c LEFT JOIN documents d USING (document_id)"):
                if body is None:
                    found.append(f"chunk {cid}: document {doc} is missing")
                elif body[start:end] != text:
                    found.append(f"chunk {cid}: text differs from {doc}[{start}:{end}]")
            missing = db.execute("SELECT count(*) FROM chunks c LEFT JOIN embeddings e ON "
                                 "e.hash = c.embed_hash WHERE e.hash IS NULL").fetchone()[0]
            if missing:
                found.append(f"{missing} chunks have no stored embedding")
            empty = db.execute("SELECT count(*) FROM documents d WHERE NOT EXISTS (SELECT 1 "
                               "FROM chunks c WHERE c.document_id = d.document_id)").fetchone()[0]
            if empty:
                found.append(f"{empty} documents have no chunks")
            ids = {r[0] for r in db.execute("SELECT id FROM chunks")}
        index, _ = self.vectors()
        if len(index) != len(ids):
            found.append(f"FAISS holds {len(index)} vectors, the store {len(ids)} chunks")
        return found

    def details(self) -> dict[str, int]:
        return {}  # every write is one SQLite transaction: none is ever half-done

    def document(self, document_id: str) -> dict[str, Any]:
        with self._read() as db:
            row = db.execute("SELECT * FROM documents WHERE document_id = ?",
                             (document_id,)).fetchone()
            if row is None:
                raise NotFound(f"no document with id {document_id!r}")
            n = db.execute("SELECT count(*) FROM chunks WHERE document_id = ?",
                           (document_id,)).fetchone()[0]
            authors = [r[0] for r in db.execute(
                "SELECT name FROM document_authors WHERE document_id = ? ORDER BY rowid",
                (document_id,))]
        doc = dict(row)
        doc["authors"] = authors
        doc["chunks"] = n
        return doc

    def documents(self, limit: int, offset: int,
                  filters: Filters | None = None) -> tuple[int, list[dict[str, Any]]]:
        """One page of documents (newest first) passing ``filters``, and how many pass."""
        where, args = filter_sql(filters or Filters())
        with self._read() as db:
            total = db.execute(f"SELECT count(*) FROM documents d WHERE {where}",
                               args).fetchone()[0]
            rows = db.execute(
                "SELECT document_id, url, title, author, published_date, source FROM documents "
                f"d WHERE {where} ORDER BY published_date DESC, url LIMIT ? OFFSET ?",
                [*args, limit, offset]).fetchall()
        return total, [dict(r) for r in rows]

    def stored_articles(self, batch: int) -> Iterator[tuple[list[sqlite3.Row],
                                                             dict[str, list[sqlite3.Row]]]]:
        """Every article's row and its chunks' rows (ordinal order), ``batch`` articles at a
        time in document id order: to copy the index elsewhere with one batch in memory."""
        with self._read() as db:
            ids = [r[0] for r in db.execute("SELECT document_id FROM documents "
                                            "ORDER BY document_id")]
        for i in range(0, len(ids), batch):
            part = ids[i:i + batch]
            marks = ",".join("?" * len(part))
            with self._read() as db:  # an article deleted meanwhile is skipped
                docs = db.execute(f"SELECT * FROM documents WHERE document_id IN ({marks}) "
                                  "ORDER BY document_id", part).fetchall()
                chunks: dict[str, list[sqlite3.Row]] = {}
                for r in db.execute(
                        "SELECT document_id, ordinal, char_start, char_end, text, n_tokens, "
                        f"embed_hash FROM chunks WHERE document_id IN ({marks}) "
                        "ORDER BY document_id, ordinal", part):
                    chunks.setdefault(r["document_id"], []).append(r)
            yield docs, chunks
