"""``open_index``: the one place an index backend is chosen.

``embedded`` (the default): SQLite as the truth, FAISS and an in-memory BM25 index derived from
it, in a directory. ``milvus``: a Milvus Lite file or a Milvus server, for corpora past one
machine. Both implement ``rag.index.base.Index``; pymilvus is imported only for ``milvus``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from rag.core.extras import need
from rag.index.base import Index, IndexParams

Backend = Literal["embedded", "milvus"]


@dataclass(frozen=True)
class IndexLocation:
    """Where an index lives: a directory (embedded), or a Milvus URI (a Lite file path or
    http://host:19530) with its credentials."""

    backend: Backend = "embedded"
    path: Path = Path("index")
    milvus_uri: str = ""
    milvus_token: str = ""

    @property
    def uri(self) -> str:
        """The Milvus URI: as given, or a Milvus Lite file inside ``path``."""
        return self.milvus_uri or str(self.path / "milvus.db")


def set_search_threads(n: int) -> None:
    """The threads one in-process vector search may use (FAISS's OpenMP count); Milvus
    searches run in its own server."""
    from rag.index.embedded.vectors import set_threads

    set_threads(n)


def _milvus():
    need("pymilvus", "milvus", "RAG_BACKEND=milvus")
    from rag.index import milvus

    return milvus


def open_index(location: IndexLocation, params: IndexParams | None = None, *,
               create: bool = False, for_writing: bool = False,
               dim: Callable[[], int] | None = None) -> Index:
    """Open the index at ``location``, checking it was built with ``params`` (the model; for
    writers the chunking too). ``create`` makes a missing one; ``dim()`` is asked only then,
    when ``params`` has no dimension (it loads the model)."""
    if params is not None and not params.dim and dim is not None and create and not exists(
            location):
        params = replace(params, dim=dim())
    if location.backend == "milvus":
        return _milvus().MilvusStore.open(location.uri, params, create=create,
                                          check_chunking=for_writing,
                                          token=location.milvus_token)
    from rag.index.embedded.store import Store

    return Store.open(location.path, params, create=create, check_chunking=for_writing)


def exists(location: IndexLocation) -> bool:
    if location.backend == "milvus":
        return _milvus().MilvusStore.exists(location.uri, location.milvus_token)
    from rag.index.embedded.store import Store

    return Store.exists(location.path)


@contextmanager
def rebuilding(location: IndexLocation, params: IndexParams) -> Iterator[IndexLocation]:
    """Where to build a new index that replaces the one at ``location`` (``rag ingest
    --rebuild``). Embedded: a new directory, swapped in when the block succeeds (the old index
    serves until then and is kept if the block fails). Milvus: its collections are dropped
    first (Milvus has no atomic swap; re-run the ingest if it fails)."""
    if location.backend == "milvus":
        _milvus().MilvusStore.drop(location.uri, location.milvus_token)
        yield location
        return
    from rag.index.embedded.store import Store

    with Store.rebuilding(location.path, params) as fresh:
        yield replace(location, path=fresh)
