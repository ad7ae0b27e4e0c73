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
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag import keyword, vectorfiles
from rag.documents import Article, Chunk, Filters, domain_of
from rag.errors import IndexMismatch, NotFound
from rag.segments import LexicalFiles, LexicalSegments, LexicalView
from rag.tables import FORMAT_VERSION, SCHEMA
from rag.vectors import IVF_MIN, VectorIndex

DB_NAME = "rag.sqlite3"



@dataclass(frozen=True)
class IndexParams:
    """What an index was built with; recorded on creation and checked on every open."""

    model: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int

    def as_meta(self) -> dict[str, str]:
        return {"format_version": str(FORMAT_VERSION), "model": self.model, "dim": str(self.dim),
                "chunk_tokens": str(self.chunk_tokens), "chunk_overlap": str(self.chunk_overlap)}


@dataclass
class DocumentWrite:
    article: Article
    chunks: list[Chunk]
    embed_hashes: list[str]
    content_hash: str | None = None  # kept as stored when an index is copied (rag migrate)

    def hash(self) -> str:
        return self.content_hash or self.article.content_hash()


Ranking = list[tuple[int, float]]


class SearchStore(Protocol):
    """What the read path needs from an index: the embedded Store and MilvusStore."""

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters) -> Ranking: ...
    def keyword_ranking(self, question: str, k: int, filters: Filters,
                        backend: str = "bm25s") -> Ranking: ...
    def sentence_ranking(self, question: str, k: int, filters: Filters,
                         backend: str = "bm25s") -> Ranking: ...
    def sources(self) -> list[str]: ...
    def chunk_documents(self, ids: Sequence[int]) -> dict[int, str]: ...
    def chunk_rows(self, ids: Sequence[int]) -> dict[int, Any]: ...


ALLOWED_CACHE = 512  # filter -> allowed chunk ids answers kept


def rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with: rag ingest SOURCES... --index {index_dir} --rebuild"


class Store:
    """One index directory. Thread-safe for readers; writes are serialised by SQLite."""

    def __init__(self, index_dir: Path):
        self.dir = Path(index_dir)
        self.db_path = self.dir / DB_NAME
        self._local = threading.local()
        self._vec_lock = threading.Lock()
        self._vectors: VectorIndex | None = None
        self._vectors_gen = -1
        self._files = vectorfiles.VectorFiles(self.dir)
        self._lexical = LexicalSegments(self._read, self.close, LexicalFiles(self.dir))
        self._allowed: dict[Filters, tuple[int, np.ndarray]] = {}  # at a generation

    # ------------------------------------------------------------ opening

    @classmethod
    def exists(cls, index_dir: Path) -> bool:
        return (Path(index_dir) / DB_NAME).is_file()

    @classmethod
    def open(cls, index_dir: Path, params: IndexParams | None = None, *,
             create: bool = False, check_chunking: bool = False) -> Store:
        """Open (or create) an index, refusing one built with another model or format."""
        index_dir = Path(index_dir)
        if not cls.exists(index_dir):
            if not create:
                raise NotFound(f"no index at {index_dir}/; build one with: "
                               f"rag ingest SOURCES... --index {index_dir}")
            if params is None:
                raise ValueError("creating an index needs its parameters")
            index_dir.mkdir(parents=True, exist_ok=True)
        store = cls(index_dir)
        if create or check_chunking:  # writers make sure the schema exists; readers never lock
            with store._write() as db:
                store._create_schema(db)
                if store._meta(db).get("format_version") is None and params is not None:
                    db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                   [*params.as_meta().items(), ("generation", "0")])
        store.check(params, check_chunking=check_chunking)
        if create or check_chunking:
            store.write_manifest()
        return store

    @staticmethod
    def _create_schema(db: sqlite3.Connection) -> None:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)

    @classmethod
    def rebuild(cls, index_dir: Path, params: IndexParams) -> None:
        """Empty an index for a fresh build with ``params``, keeping stored embeddings of the
        same model (so re-chunking re-embeds only texts it has not seen). An unreadable index
        is removed instead."""
        index_dir = Path(index_dir)
        if not cls.exists(index_dir):
            return
        store = cls(index_dir)
        try:
            with store._write() as db:
                store._create_schema(db)
                same_model = store._meta(db).get("model") == params.model
                gen = int(store._meta(db).get("generation", "0")) + 1
                db.execute("INSERT INTO tombstones SELECT id, ? FROM chunks", (gen,))
                for table in ("chunks_fts", "sentences_fts", "sentences", "chunks",
                              "document_authors", "documents",
                              *(() if same_model else ("embeddings",))):
                    db.execute(f"DELETE FROM {table}")
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               [*params.as_meta().items(), ("generation", str(gen))])
        except sqlite3.DatabaseError:
            store.close()
            for p in index_dir.glob(f"{DB_NAME}*"):
                p.unlink()
        store.close()
        vectorfiles.VectorFiles(index_dir).remove_all()
        LexicalFiles(index_dir).remove_all()

    def check(self, params: IndexParams | None, check_chunking: bool = False) -> None:
        meta = self.meta()
        version = int(meta.get("format_version", "0"))
        if version != FORMAT_VERSION:
            raise IndexMismatch(f"index at {self.dir}/ has format version {version}, this rag "
                                f"reads version {FORMAT_VERSION}; {rebuild_hint(self.dir)}")
        if params is None:
            return
        if meta["model"] != params.model:
            raise IndexMismatch(
                f"index at {self.dir}/ was built with model {meta['model']!r} "
                f"({meta['dim']}-dim) but the configured model is {params.model!r}; "
                f"set RAG_MODEL={meta['model']} or {rebuild_hint(self.dir)}")
        if check_chunking:
            built = (int(meta["chunk_tokens"]), int(meta["chunk_overlap"]))
            wanted = (params.chunk_tokens, params.chunk_overlap)
            if built != wanted:
                raise IndexMismatch(
                    f"index at {self.dir}/ was chunked with chunk_tokens={built[0]}, "
                    f"chunk_overlap={built[1]} but the settings ask for {wanted[0]}, "
                    f"{wanted[1]}; {rebuild_hint(self.dir)}")

    # ------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    class _Txn:
        def __init__(self, conn: sqlite3.Connection, mode: str):
            self.conn, self.mode = conn, mode

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute(f"BEGIN {self.mode}")
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def _write(self) -> _Txn:
        return self._Txn(self._conn(), "IMMEDIATE")

    def _read(self) -> _Txn:
        return self._Txn(self._conn(), "DEFERRED")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ------------------------------------------------------------ meta

    @staticmethod
    def _meta(db: sqlite3.Connection) -> dict[str, str]:
        return {r["key"]: r["value"] for r in db.execute("SELECT key, value FROM meta")}

    def meta(self) -> dict[str, str]:
        with self._read() as db:
            return self._meta(db)

    @property
    def generation(self) -> int:
        row = self._conn().execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def write_manifest(self) -> None:
        manifest = {**self.meta(), **self.counts()}
        tmp = self.dir / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.dir / "manifest.json")

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
                keyword.index_document(db, a)
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
            keyword.unindex_documents(db, f"{column} IN ({marks})", part)
            db.execute(f"DELETE FROM chunks WHERE {where}", part)
            db.execute(f"DELETE FROM documents WHERE {column} IN ({marks})", part)

    def delete(self, urls: Sequence[str]) -> int:
        return self.write([], {}, delete_urls=urls)

    def urls(self) -> list[str]:
        with self._read() as db:
            return [r[0] for r in db.execute("SELECT url FROM documents ORDER BY url")]

    # ------------------------------------------------------------ vectors

    def vectors(self) -> tuple[VectorIndex, int]:
        """The FAISS index at the store's current generation, caught up or rebuilt as needed."""
        with self._vec_lock, self._read() as db:
            gen = int(self._meta(db)["generation"])
            if self._vectors is not None and self._vectors_gen == gen:
                return self._vectors, gen
            index, base = self._vectors, self._vectors_gen
            if index is None:
                index, base = self._files.load_latest(int(self._meta(db)["dim"]), gen)
            vectorfiles.catch_up(db, index, base, gen)
            self._vectors, self._vectors_gen = index, gen
            return index, gen

    def save_vectors(self, ivf_min: int = IVF_MIN) -> Path:
        """Persist the current FAISS index, tagged with its generation; drop older files.
        An exact index that has grown to ``ivf_min`` vectors is saved as an IVF index."""
        index, gen = self.vectors()
        converted = index.kind == "flat" and len(index) >= ivf_min
        if converted:
            with self._vec_lock:
                index = index.to_ivf()
                if self._vectors_gen == gen:
                    self._vectors = index
        path = self._files.save(index, gen, replace=converted)
        self.write_manifest()
        return path

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
        where, args = keyword.filter_sql(filters)
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
        if len(self._allowed) >= ALLOWED_CACHE and filters not in self._allowed:
            self._allowed.clear()
        self._allowed[filters] = (gen, ids)
        return ids

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters) -> Ranking:
        """Top ``k`` (chunk id, cosine) among the chunks passing ``filters``."""
        index, _ = self.vectors()
        scores, ids = index.search(vector, k, self.allowed_chunk_ids(filters))
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]

    def keyword_ranking(self, question: str, k: int, filters: Filters,
                        backend: str = "bm25s") -> Ranking:
        if backend == "fts5":
            return self.keyword_search(question, k, filters)
        return self.lexical().search(question, k, self.allowed_chunk_ids(filters))

    def sentence_ranking(self, question: str, k: int, filters: Filters,
                         backend: str = "bm25s") -> Ranking:
        if backend == "fts5":
            return self.sentence_search(question, k, filters)
        return self.lexical().sentence_search(question, k, self.allowed_chunk_ids(filters))

    def lexical(self) -> LexicalView:
        """The in-memory BM25 index (bm25s) at the store's current generation: built on first
        use, then caught up with each write by a small segment, and rebuilt in a background
        thread when the segments grow (rag/segments.py)."""
        return self._lexical.view(self.generation)

    def keyword_search(self, question: str, k: int,
                       filters: Filters) -> list[tuple[int, float]]:
        with self._read() as db:
            return keyword.search(db, question, k, filters)

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

    def sentence_search(self, question: str, k: int,
                        filters: Filters) -> list[tuple[int, float]]:
        with self._read() as db:
            return keyword.sentence_search(db, question, k, filters)

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
            chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            fts = db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
            if fts != chunks:
                found.append(f"keyword index holds {fts} chunks, the store {chunks}")
            empty = db.execute("SELECT count(*) FROM documents d WHERE NOT EXISTS (SELECT 1 "
                               "FROM chunks c WHERE c.document_id = d.document_id)").fetchone()[0]
            if empty:
                found.append(f"{empty} documents have no chunks")
            ids = {r[0] for r in db.execute("SELECT id FROM chunks")}
        index, _ = self.vectors()
        if len(index) != len(ids):
            found.append(f"FAISS holds {len(index)} vectors, the store {len(ids)} chunks")
        return found

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
        where, args = keyword.filter_sql(filters or Filters())
        with self._read() as db:
            total = db.execute(f"SELECT count(*) FROM documents d WHERE {where}",
                               args).fetchone()[0]
            rows = db.execute(
                "SELECT document_id, url, title, author, published_date, source FROM documents "
                f"d WHERE {where} ORDER BY published_date DESC, url LIMIT ? OFFSET ?",
                [*args, limit, offset]).fetchall()
        return total, [dict(r) for r in rows]
