"""The index in Milvus: chunk text, metadata, vectors and BM25 all live there.

``RAG_BACKEND=milvus``. ``RAG_MILVUS_URI`` is a local file (Milvus Lite, in-process, what the
tests use) or ``http://host:19530`` (Milvus standalone or distributed): the same code talks to
both through pymilvus, and an API server holds nothing that must live on its machine, so any
number of replicas can serve one corpus.

Collections (prefix ``rag_``):
  chunks     id, vector (exact inner product on Lite, AUTOINDEX on a server), BM25 over the
             chunk's text + title + metadata, the text and offsets, and the document's fields
             used by filters (source, domain, authors, day) so every search filters in Milvus
  sentences  BM25 over each sentence, with the chunks that contain it (the sentence ranking)
  documents  one row per article, written last: a chunk whose document row is missing was
             interrupted mid-write and is never served; the next writer removes it
  bodies     the article text in parts (a VARCHAR holds at most 64 KiB)
  meta       model, dimension, chunking, format, generation — checked on open like the
             embedded store's meta table

BM25 runs on this package's own tokens (content words, Porter2 stems: rag/text/tokens.py) joined by
spaces ("-" written "_", so Milvus' standard tokenizer keeps "longer-range" one word), so both
backends rank the same words; Milvus computes the statistics and scores.
Milvus has no multi-collection transactions: crash safety comes from the write order above.
Milvus Lite persists each collection on its own, so there the order is made durable by
flushes: a write's parts before its document rows, and removed document rows before their
parts (a kill once left an article whose document row had outlived part of its rows).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.documents import Filters, domain_of, split_authors
from rag.core.errors import IndexUnavailable, NotFound
from rag.index.base import DocumentWrite, IndexParams, Ranking, check_params
from rag.text.sentences import sentence_spans
from rag.text.tokens import Tokenizer, meta_words

log = logging.getLogger(__name__)

PREFIX = "rag_"
BODY_PART = 15_000  # characters per body row: at most 60 KB of UTF-8
BATCH = 500  # rows per insert / ids per ``in`` filter
NO_DAY = -(10**6)  # the day of an undated article: excluded by any date filter
OWNERS = 32  # most chunks a sentence can belong to (overlap makes it 1-2)
TEXT_MAX = 65_535
COLLECTIONS = ("chunks", "sentences", "documents", "bodies", "meta")


def int_id(*parts: object) -> int:
    """A stable positive int64 id from ``parts`` (chunks: document id and ordinal)."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def day_number(published: str | None) -> int:
    return date.fromisoformat(published).toordinal() if published else NO_DAY


def quote(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def like_escaped(value: str) -> str:
    """``value`` matched literally inside a LIKE pattern (its ``%`` and ``_`` are not
    wildcards, as the embedded backend compares the domain suffix exactly)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def clip(text: str | None, limit: int = 4_000) -> str:
    """Milvus VARCHAR limits are in bytes: cut at a character count that always fits."""
    return (text or "")[: limit // 4]


def filter_expr(filters: Filters | None) -> str:
    """``filters`` as a Milvus boolean expression over the fields every collection carries
    (the same meaning as the embedded store's SQL: authors case-insensitive; a source is a
    publisher name or a URL domain, subdomains included; inclusive dates)."""
    if filters is None or filters.is_empty():
        return ""
    clauses = []
    if filters.authors:
        names = ", ".join(quote(a.strip().lower()) for a in filters.authors)
        clauses.append(f"array_contains_any(authors, [{names}])")
    if filters.sources:
        parts = []
        for s in filters.sources:
            s = s.strip()
            dom = domain_of(s if "://" in s else f"http://{s}")
            parts.append(f"source_lc == {quote(s.lower())} or domain == {quote(dom)} or "
                         f"domain like {quote('%.' + like_escaped(dom))}")
        clauses.append("(" + " or ".join(f"({p})" for p in parts) + ")")
    if filters.published_after:
        clauses.append(f"day >= {filters.published_after.toordinal()}")
    if filters.published_before:
        clauses.append(f"(day <= {filters.published_before.toordinal()} and day > {NO_DAY})")
    return " and ".join(clauses)


NOT_LOADED = 101  # Milvus' "collection not loaded"


class ReloadingClient:
    """A MilvusClient whose calls survive collections that are no longer loaded: a restarted
    Milvus Lite server comes back with every collection released, and an operator may
    release them on a cluster. Such a call loads the index's collections and runs once more
    (without this every replica answered 503 until it was restarted)."""

    def __init__(self, client: Any, uri: str):
        self._client = client
        self.uri = uri

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            from pymilvus.exceptions import MilvusException

            with unavailable(self.uri):
                try:
                    return attr(*args, **kwargs)
                except MilvusException as exc:
                    if exc.code != NOT_LOADED:
                        raise
                    log.warning("Milvus collections were released; loading them again")
                    for collection in COLLECTIONS:
                        self._client.load_collection(PREFIX + collection)
                    return attr(*args, **kwargs)

        return call


@contextmanager
def unavailable(uri: str) -> Iterator[None]:
    """Milvus' own failures (refused, unreachable, timed out: pymilvus and gRPC errors) as
    ``IndexUnavailable`` (HTTP 503, one CLI line), with the reason, never a traceback."""
    import grpc
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except (MilvusException, grpc.RpcError) as exc:
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise IndexUnavailable(f"the Milvus index at {uri} is unavailable: {reason}") from None


class MilvusStore:
    """The ``Index`` interface (rag/index/base.py) over Milvus collections."""

    def __init__(self, uri: str, token: str = ""):
        from pymilvus import MilvusClient

        # after pymilvus configured its loggers: no warning on every iterator scan, and no
        # traceback of its own for a failed call (the API and the CLI report it in one line)
        logging.getLogger("pymilvus").setLevel(logging.ERROR)
        logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
        logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
        self.uri = self.location = uri
        self.lite = "://" not in uri
        with unavailable(uri):
            client = MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
        self.client = ReloadingClient(client, uri)
        self._tokenize = Tokenizer()
        self._lock = threading.Lock()
        self._sources: tuple[int, list[str]] | None = None

    def tokenize(self, text: str) -> list[str]:
        return [w.replace("-", "_") for w in self._tokenize(text)]

    # ------------------------------------------------------------ opening

    @classmethod
    def exists(cls, uri: str, token: str = "") -> bool:
        if "://" not in uri and not Path(uri).exists():
            return False
        store = cls(uri, token)
        try:
            return bool(store.client.has_collection(PREFIX + "meta"))
        finally:
            store.close()

    @classmethod
    def open(cls, uri: str, params: IndexParams | None = None, *, create: bool = False,
             check_chunking: bool = False, token: str = "") -> MilvusStore:
        """Open (or create) the index."""
        if "://" not in uri:
            if not create and not Path(uri).exists():
                raise NotFound(f"no index in Milvus at {uri}; build one with: "
                               "RAG_BACKEND=milvus rag ingest SOURCES...")
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        store = cls(uri, token)
        try:
            if not store.client.has_collection(PREFIX + "meta"):
                if not create:
                    raise NotFound(f"no index in Milvus at {uri}; build one with: "
                                   "RAG_BACKEND=milvus rag ingest SOURCES...")
                if params is None or not params.dim:
                    raise ValueError("creating an index needs its parameters")
                store._create(params)
            for name in COLLECTIONS:
                store.client.load_collection(PREFIX + name)
            store.check(params, check_chunking)
            if check_chunking:  # a writer: finish the recovery of writes a crash interrupted
                store._remove(store.interrupted())
        except BaseException:
            with suppress(Exception):  # a refused index leaves no client behind
                store.close()
            raise
        return store

    def _collection(self, name: str, fields: list[tuple], vector: tuple | None = None,
                    bm25: str | None = None) -> None:
        from pymilvus import DataType, Function, FunctionType

        schema = self.client.create_schema(auto_id=False)
        for field in fields:
            schema.add_field(*field[:2], **(field[2] if len(field) > 2 else {}))
        index = self.client.prepare_index_params()
        if bm25:
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(Function(name=f"{name}_bm25", function_type=FunctionType.BM25,
                                         input_field_names=[bm25], output_field_names=["sparse"]))
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                            params={"bm25_k1": 1.2, "bm25_b": 0.75})
        if vector or not bm25:  # Milvus wants a vector field in every collection
            name_, dim = vector or ("placeholder", 2)
            schema.add_field(name_, DataType.FLOAT_VECTOR, dim=dim)
            index.add_index(name_, index_type="FLAT" if self.lite or not vector else "AUTOINDEX",
                            metric_type="IP")
        self.client.create_collection(PREFIX + name, schema=schema, index_params=index,
                                      consistency_level="Strong")

    @classmethod
    def drop(cls, uri: str, token: str = "") -> None:
        """Remove the index (``rag ingest --rebuild``): Milvus keeps no embedding cache apart
        from the chunks, so a rebuild embeds every text again."""
        if "://" not in uri and not Path(uri).exists():
            return
        store = cls(uri, token)
        try:
            store._drop_all()
        finally:
            store.close()

    def _drop_all(self) -> None:
        for name in self.client.list_collections():
            if name.startswith(PREFIX):
                self.client.drop_collection(name)

    def _create(self, params: IndexParams) -> None:
        from pymilvus import DataType as T

        self._drop_all()  # leftovers of an interrupted creation

        text = {"max_length": TEXT_MAX}
        tokens = {"max_length": TEXT_MAX, "enable_analyzer": True,
                  "analyzer_params": {"tokenizer": "standard"}}
        short = {"max_length": 4_000}
        filters = [("source_lc", T.VARCHAR, short), ("domain", T.VARCHAR, short),
                   ("authors", T.ARRAY, {"element_type": T.VARCHAR, "max_capacity": 64,
                                         "max_length": 1_000}),
                   ("day", T.INT64), ("document_id", T.VARCHAR, {"max_length": 64})]
        self._collection("chunks", [
            ("id", T.INT64, {"is_primary": True}), ("tokens", T.VARCHAR, tokens),
            ("text", T.VARCHAR, text), ("ordinal", T.INT64), ("char_start", T.INT64),
            ("char_end", T.INT64), ("n_tokens", T.INT64),
            ("embed_hash", T.VARCHAR, {"max_length": 64}), *filters],
            vector=("vector", params.dim), bm25="tokens")
        self._collection("sentences", [
            ("id", T.INT64, {"is_primary": True}), ("tokens", T.VARCHAR, tokens),
            ("owners", T.ARRAY, {"element_type": T.INT64, "max_capacity": OWNERS}), *filters],
            bm25="tokens")
        self._collection("documents", [
            ("document_id", T.VARCHAR, {"is_primary": True, "max_length": 64}),
            *[(f, T.VARCHAR, short) for f in (
                "url", "title", "author", "published_date", "published_at", "source",
                "category", "content_hash", "origin", "ingested_at")],
            ("summary", T.VARCHAR, text), ("highlights", T.VARCHAR, text),
            *filters[:4]])
        self._collection("bodies", [("id", T.INT64, {"is_primary": True}),
                                    ("document_id", T.VARCHAR, {"max_length": 64}),
                                    ("part", T.INT64), ("text", T.VARCHAR, text)])
        self._collection("meta", [("key", T.VARCHAR, {"is_primary": True, "max_length": 64}),
                                  ("value", T.VARCHAR, short)])
        self._set_meta({**params.as_meta(), "generation": "0", "backend": "milvus"})

    def check(self, params: IndexParams | None, check_chunking: bool = False) -> None:
        check_params(self.meta(), params, self.uri, check_chunking, milvus=True)

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------ meta

    def _set_meta(self, values: dict[str, str]) -> None:
        self.client.upsert(PREFIX + "meta", [{"key": k, "value": v, "placeholder": [0.0, 0.0]}
                                             for k, v in values.items()])

    def meta(self) -> dict[str, str]:
        rows = self.client.query(PREFIX + "meta", filter='key != ""',
                                 output_fields=["key", "value"])
        return {r["key"]: r["value"] for r in rows}

    @property
    def generation(self) -> int:
        rows = self.client.get(PREFIX + "meta", ids=["generation"], output_fields=["value"])
        return int(rows[0]["value"]) if rows else 0

    def _count(self, name: str, expr: str = "") -> int:
        rows = self.client.query(PREFIX + name, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def counts(self) -> dict[str, int]:
        """Documents, chunks and stored embeddings (one a chunk: Milvus keeps each chunk's
        vector in its row)."""
        chunks = self._count("chunks")
        return {"documents": self._count("documents"), "chunks": chunks, "embeddings": chunks}

    # ------------------------------------------------------------ scans

    def _scan(self, name: str, fields: list[str], expr: str = "") -> Iterator[dict]:
        """Every row of a collection passing ``expr`` (an iterator: no result-size cap)."""
        it = self.client.query_iterator(PREFIX + name, batch_size=1000, filter=expr,
                                        output_fields=fields)
        try:
            while True:
                with unavailable(self.uri):
                    batch = it.next()
                if not batch:
                    break
                yield from batch
        finally:
            it.close()

    def _in(self, name: str, field: str, values: Sequence, fields: list[str]) -> list[dict]:
        rows: list[dict] = []
        for i in range(0, len(values), BATCH):
            part = values[i:i + BATCH]
            literal = ", ".join(quote(v) if isinstance(v, str) else str(int(v)) for v in part)
            rows += self.client.query(PREFIX + name, filter=f"{field} in [{literal}]",
                                      output_fields=fields, limit=16_384)
        return rows

    # ------------------------------------------------------------ writes

    def content_hashes(self) -> dict[str, str]:
        return {r["url"]: r["content_hash"]
                for r in self._scan("documents", ["url", "content_hash"])}

    def cached_embeddings(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        return {r["embed_hash"]: np.asarray(r["vector"], dtype=np.float32)
                for r in self._in("chunks", "embed_hash", wanted, ["embed_hash", "vector"])}

    def _remove(self, document_ids: list[str]) -> None:
        """Document rows first, and on disk before the parts go: a kill in between leaves
        parts without a document (an interrupted write), never a document without parts."""
        batches = [", ".join(quote(d) for d in document_ids[i:i + BATCH])
                   for i in range(0, len(document_ids), BATCH)]
        for literal in batches:
            self.client.delete(PREFIX + "documents", filter=f"document_id in [{literal}]")
        if batches:
            self._durable(("documents",))
        for literal in batches:
            for name in ("chunks", "sentences", "bodies"):
                self.client.delete(PREFIX + name, filter=f"document_id in [{literal}]")

    def _durable(self, names: Iterable[str]) -> None:
        """On Lite, flush ``names`` now: it persists each collection on its own (a write-ahead
        log per collection), so without this a kill could keep a later collection's rows and
        lose an earlier one's. A server logs every acknowledged insert in order."""
        if self.lite:
            for name in names:
                self.client.flush(PREFIX + name)

    def _upsert(self, name: str, rows: list[dict]) -> None:
        """Upserted: every row's id derives from its article, and a Milvus server (unlike
        Lite) keeps two rows with one primary key when both are inserted, so two replicas
        writing the same article at once would store it twice."""
        for i in range(0, len(rows), BATCH):
            self.client.upsert(PREFIX + name, rows[i:i + BATCH])

    def write(self, docs: Sequence[DocumentWrite], embeddings: dict[str, np.ndarray],
              delete_urls: Sequence[str] = ()) -> int:
        """Replace/insert ``docs``, delete ``delete_urls``; each article's document row last."""
        with self._lock:
            gone = [r["document_id"] for r in self._in("documents", "url", list(delete_urls),
                                                       ["document_id"])]
            # vectors of unchanged chunk texts live in the chunks about to be replaced
            cached = self.cached_embeddings(
                h for d in docs for h in d.embed_hashes if h not in embeddings)
            vectors = {**cached, **embeddings}
            self._remove([d.article.document_id for d in docs] + gone)
            now = datetime.now(UTC).isoformat(timespec="seconds")
            for d in docs:
                self._write_parts(d, vectors)
            if docs:  # the parts on disk before the document rows that make them served
                self._durable(("bodies", "chunks", "sentences"))
            self._upsert("documents", [self._document_row(d, now) for d in docs])
            gen = self.generation + 1
            self._set_meta({"generation": str(gen)})
            if self.lite:  # Lite keeps recent inserts in memory until a flush
                self.save_vectors()
            return gen

    @staticmethod
    def _shared(d: DocumentWrite) -> dict:
        """The document's fields every row of it carries, for filters."""
        a = d.article
        published = a.published_date.isoformat() if a.published_date else None
        return {"source_lc": clip(a.source_name).lower(), "domain": clip(a.domain),
                "authors": [clip(n, 1_000).lower() for n in a.authors][:64],
                "day": day_number(published)}

    def _write_parts(self, d: DocumentWrite, vectors: dict[str, np.ndarray]) -> None:
        """An article's body, chunks and sentences (its document row comes after)."""
        a = d.article
        published = a.published_date.isoformat() if a.published_date else None
        shared = self._shared(d)
        meta = meta_words(a.source_name, a.domain, a.author, published)
        body = a.body
        self._upsert("bodies", [
            {"id": int_id(a.document_id, "body", i), "document_id": a.document_id, "part": i,
             "text": body[start:start + BODY_PART], "placeholder": [0.0, 0.0]}
            for i, start in enumerate(range(0, max(len(body), 1), BODY_PART))])
        chunk_ids = [int_id(a.document_id, c.ordinal) for c in d.chunks]
        self._upsert("chunks", [
            {"id": cid, "vector": np.asarray(vectors[h], np.float32).tolist(),
             "tokens": clip(" ".join(self.tokenize(f"{c.text} {a.title} {meta}")), TEXT_MAX),
             "text": c.text, "ordinal": c.ordinal, "char_start": c.char_start,
             "char_end": c.char_end, "n_tokens": c.n_tokens, "embed_hash": h,
             "document_id": a.document_id, **shared}
            for cid, c, h in zip(chunk_ids, d.chunks, d.embed_hashes, strict=True)])
        sentences = []
        for start, end in sentence_spans(body):
            owners = [cid for cid, c in zip(chunk_ids, d.chunks, strict=True)
                      if c.char_start <= start and end <= c.char_end][:OWNERS]
            words = self.tokenize(body[start:end])
            if owners and words:
                sentences.append({"id": int_id(a.document_id, "sentence", start),
                                  "tokens": clip(" ".join(words), TEXT_MAX), "owners": owners,
                                  "document_id": a.document_id, **shared})
        self._upsert("sentences", sentences)

    def _document_row(self, d: DocumentWrite, now: str) -> dict:
        """The row that commits an article: written once its parts are."""
        a = d.article
        return {
            "document_id": a.document_id, "url": clip(a.url), "title": clip(a.title),
            "author": clip(a.author),
            "published_date": a.published_date.isoformat() if a.published_date else "",
            "published_at": clip(a.published_at), "source": clip(a.source_name),
            "category": clip(a.category), "content_hash": d.hash(),
            "origin": clip(a.origin), "ingested_at": now, "summary": clip(a.summary, TEXT_MAX),
            "highlights": clip(a.highlights, TEXT_MAX), **self._shared(d),
            "placeholder": [0.0, 0.0]}

    def delete(self, urls: Sequence[str]) -> int:
        return self.write([], {}, delete_urls=urls)

    def urls(self) -> list[str]:
        return sorted(r["url"] for r in self._scan("documents", ["url"]))

    def vectors_stale(self) -> bool:
        """Milvus keeps its own indexes: nothing derived to save."""
        return False

    def delete_document(self, document_id: str) -> str:
        """Delete one article by id; its URL, or NotFound."""
        url = self.document(document_id)["url"]
        self.delete([url])
        return url

    def save_vectors(self) -> None:
        """Milvus persists its own indexes; flush so a Lite file holds every write."""
        for name in COLLECTIONS:
            self.client.flush(PREFIX + name)

    # ------------------------------------------------------------ search

    def _search(self, name: str, data: list, field: str, k: int, filters: Filters,
                fields: list[str]) -> list[dict]:
        if k <= 0:
            return []
        hits = self.client.search(PREFIX + name, data=data, anns_field=field, limit=min(k, 16_384),
                                  filter=filter_expr(filters), output_fields=fields,
                                  search_params={"metric_type": "BM25" if field == "sparse"
                                                 else "IP"})
        return list(hits[0]) if hits else []

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters) -> Ranking:
        hits = self._search("chunks", [np.asarray(vector, np.float32).tolist()], "vector", k,
                            filters, [])
        return [(int(h["id"]), float(h["distance"])) for h in hits]

    def _bm25(self, name: str, question: str, k: int, filters: Filters,
              fields: list[str]) -> list[dict]:
        words = self.tokenize(question)
        if not words:
            return []
        return self._search(name, [" ".join(words)], "sparse", k, filters, fields)

    def keyword_ranking(self, question: str, k: int, filters: Filters) -> Ranking:
        """BM25 in Milvus."""
        hits = self._bm25("chunks", question, k, filters, [])
        return [(int(h["id"]), abs(float(h["distance"]))) for h in hits]

    def sentence_ranking(self, question: str, k: int, filters: Filters) -> Ranking:
        """Chunks ranked by the BM25 score of the best sentence they contain."""
        best: dict[int, float] = {}
        for h in self._bm25("sentences", question, 2 * k, filters, ["owners"]):
            for cid in h["entity"]["owners"]:
                best.setdefault(int(cid), abs(float(h["distance"])))
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:k]

    def sources(self) -> list[str]:
        gen = self.generation
        if self._sources is None or self._sources[0] != gen:
            names = sorted({r["source"] for r in self._scan("documents", ["source"])})
            self._sources = (gen, names)
        return self._sources[1]

    def chunk_documents(self, ids: Sequence[int]) -> dict[int, str]:
        return {int(r["id"]): r["document_id"]
                for r in self._in("chunks", "id", list(ids), ["id", "document_id"])}

    def chunk_rows(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Chunk text, offsets and document metadata; chunks of unfinished articles are absent."""
        chunks = self._in("chunks", "id", list(ids), [
            "id", "document_id", "ordinal", "char_start", "char_end", "text"])
        docs = {r["document_id"]: r for r in self._in(
            "documents", "document_id", sorted({c["document_id"] for c in chunks}),
            ["document_id", "title", "url", "author", "published_date", "source"])}
        rows = {}
        for c in chunks:
            d = docs.get(c["document_id"])
            if d is not None:
                rows[int(c["id"])] = {**c, "title": d["title"], "url": d["url"],
                                      "author": d["author"] or None,
                                      "published_date": d["published_date"] or None,
                                      "source": d["source"]}
        return rows

    # ------------------------------------------------------------ documents

    def _body(self, document_id: str) -> str | None:
        parts = self._in("bodies", "document_id", [document_id], ["part", "text"])
        return "".join(p["text"] for p in sorted(parts, key=lambda p: p["part"])) if parts else None

    def document(self, document_id: str) -> dict[str, Any]:
        rows = self.client.get(PREFIX + "documents", ids=[document_id])
        if not rows:
            raise NotFound(f"no document with id {document_id!r}")
        row = rows[0]
        doc: dict[str, Any] = {k: row[k] for k in (
            "document_id", "url", "title", "source", "domain", "content_hash", "ingested_at")}
        for k in ("author", "published_date", "published_at", "summary", "highlights",
                  "category"):
            doc[k] = row[k] or None
        doc["authors"] = split_authors(doc["author"])
        body = self._body(document_id)
        if body is None:  # deleted between the two reads (the document row goes first)
            raise NotFound(f"no document with id {document_id!r}")
        doc["body"] = body
        doc["chunks"] = self._count("chunks", f"document_id == {quote(document_id)}")
        return doc

    def documents(self, limit: int, offset: int,
                  filters: Filters | None = None) -> tuple[int, list[dict[str, Any]]]:
        """One page (newest first) and the total. Sorted here: Milvus queries are unordered."""
        fields = ["document_id", "url", "title", "author", "published_date", "source"]
        rows = list(self._scan("documents", fields, filter_expr(filters)))
        rows.sort(key=lambda r: r["url"])
        rows.sort(key=lambda r: r["published_date"] or "", reverse=True)
        page = [{k: (r[k] or None) if k in ("author", "published_date") else r[k]
                 for k in fields} for r in rows[offset:offset + limit]]
        return len(rows), page

    def details(self) -> dict[str, int]:
        return {"interrupted_writes": len(self.interrupted())}

    def interrupted(self) -> list[str]:
        """Articles whose write was cut before their document row (the commit marker): their
        parts are never served, and the next writer to open the index removes them."""
        docs = {r["document_id"] for r in self._scan("documents", ["document_id"])}
        parts = {r["document_id"] for name in ("bodies", "chunks", "sentences")
                 for r in self._scan(name, ["document_id"])}
        return sorted(parts - docs)

    def problems(self) -> list[str]:
        """Damage in what is served: documents without chunks or body, chunks that are not
        exact spans of their body. (Interrupted writes are not served: see interrupted().)"""
        found: list[str] = []
        docs = {r["document_id"] for r in self._scan("documents", ["document_id"])}
        by_doc: dict[str, list[dict]] = {}
        for c in self._scan("chunks", ["document_id", "char_start", "char_end", "text"]):
            by_doc.setdefault(c["document_id"], []).append(c)
        for doc in sorted(docs):
            body = self._body(doc)
            if body is None:
                found.append(f"document {doc} has no body")
            elif doc not in by_doc:
                found.append(f"document {doc} has no chunks")
            else:
                bad = [c for c in by_doc[doc] if body[c["char_start"]:c["char_end"]] != c["text"]]
                if bad:
                    found.append(f"document {doc}: {len(bad)} chunks differ from the body")
        return found
