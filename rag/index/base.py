"""The one interface both index backends implement, and what they share.

``Index`` is everything the rest of the package asks of an index: the reads of a question
(dense, keyword and sentence rankings within filters, the rows of the chosen chunks), the
writes of ingest (articles with their chunks and vectors, deletions) and the administration
of ``rag stats`` and ``rag migrate``. ``rag.index.factory.open_index`` is the only place that
chooses a backend; the embedded one (SQLite + FAISS + in-memory BM25) and Milvus both map
their own failures onto the error hierarchy (``IndexUnavailable`` and its kin).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.core.config import model_settings
from rag.core.documents import Article, Chunk, Filters
from rag.core.errors import IndexMismatch

FORMAT_VERSION = 2  # of an index's layout, recorded on creation and checked on every open
READABLE_FORMATS = (1, 2)  # 1 also held SQLite FTS5 tables, dropped by the next writer

Ranking = list[tuple[int, float]]  # (chunk id, score), best first


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
    """One article as ingest writes it: its chunks and each chunk's embedding hash."""

    article: Article
    chunks: list[Chunk]
    embed_hashes: list[str]
    content_hash: str | None = None  # kept as stored when an index is copied (rag migrate)

    def hash(self) -> str:
        return self.content_hash or self.article.content_hash()


def rebuild_hint(where: str, milvus: bool = False) -> str:
    if milvus:
        return (f"rebuild it with: RAG_BACKEND=milvus RAG_MILVUS_URI={where} "
                "rag ingest SOURCES... --rebuild")
    return f"rebuild it with: rag ingest SOURCES... --index {where} --rebuild"


def check_params(meta: dict[str, str], params: IndexParams | None, where: str,
                 check_chunking: bool = False, milvus: bool = False) -> None:
    """Refuse an index of another format, model or (for writers) chunking, naming the fix
    (``milvus``: the index is the Milvus collection set at the URI ``where``)."""
    version = int(meta.get("format_version", "0"))
    if version not in READABLE_FORMATS:
        raise IndexMismatch(f"the index at {where} has format version {version}, this rag "
                            f"reads versions {', '.join(map(str, READABLE_FORMATS))}; "
                            f"{rebuild_hint(where, milvus)}")
    if params is None:
        return
    if meta["model"] != params.model:
        raise IndexMismatch(
            f"the index at {where} was built with model {meta['model']!r} ({meta['dim']}-dim) "
            f"but the configured model is {params.model!r}; set {model_settings(meta['model'])} or "
            f"{rebuild_hint(where, milvus)}")
    if check_chunking:
        built = (int(meta["chunk_tokens"]), int(meta["chunk_overlap"]))
        wanted = (params.chunk_tokens, params.chunk_overlap)
        if built != wanted:
            raise IndexMismatch(
                f"the index at {where} was chunked with chunk_tokens={built[0]}, "
                f"chunk_overlap={built[1]} but the settings ask for {wanted[0]}, {wanted[1]}; "
                f"{rebuild_hint(where, milvus)}")


@runtime_checkable
class Index(Protocol):
    """An opened index. Thread-safe: a server's request threads share one."""

    location: str  # a directory or a Milvus URI, for messages and /stats

    # ---- reads of a question
    def dense_search(self, vector: np.ndarray, k: int, filters: Filters) -> Ranking: ...
    def keyword_ranking(self, question: str, k: int, filters: Filters) -> Ranking: ...
    def sentence_ranking(self, question: str, k: int, filters: Filters) -> Ranking: ...
    def sources(self) -> list[str]: ...
    def chunk_documents(self, ids: Sequence[int]) -> dict[int, str]: ...
    def chunk_rows(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]: ...

    # ---- documents
    def document(self, document_id: str) -> dict[str, Any]: ...
    def documents(self, limit: int, offset: int,
                  filters: Filters | None = None) -> tuple[int, list[dict[str, Any]]]: ...
    def urls(self) -> list[str]: ...

    # ---- writes (ingest)
    def content_hashes(self) -> dict[str, str]: ...
    def cached_embeddings(self, hashes: Iterable[str]) -> dict[str, np.ndarray]: ...
    def write(self, docs: Sequence[DocumentWrite], embeddings: dict[str, np.ndarray],
              delete_urls: Sequence[str] = ()) -> int: ...
    def delete(self, urls: Sequence[str]) -> int: ...
    def delete_document(self, document_id: str) -> str: ...
    def save_vectors(self) -> Any: ...
    def vectors_stale(self) -> bool: ...

    # ---- administration
    def meta(self) -> dict[str, str]: ...
    def counts(self) -> dict[str, int]: ...
    @property
    def generation(self) -> int: ...
    def problems(self) -> list[str]: ...
    def details(self) -> dict[str, int]: ...  # backend-specific figures for stats
    def close(self) -> None: ...
