"""The core behind both edges: one opened index, its embedder and retriever.

The HTTP routes, the MCP tools and the CLI call this class only; it never formats anything
for an edge. The index is chosen by ``rag.index.open_index`` from the settings.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.chat.llm import llm_from
from rag.chat.turn import Chat
from rag.core.config import Settings
from rag.core.documents import Answer, Article, Filters, Passage, Result
from rag.core.errors import Busy, RejectedInput
from rag.core.extras import need
from rag.embedding import Embedder, make_embedder
from rag.index import Index, IndexLocation, IndexParams, open_index
from rag.index.factory import rebuilding, set_search_threads
from rag.ingest.pipeline import IngestReport, Progress, ingest, save_after_commit
from rag.ingest.sources import Limits, article_from_record, parse_paths
from rag.retrieval.answer import (
    ANSWER_PASSAGES,
    SUPPORT_THRESHOLD,
    compose_answer,
    support,
)
from rag.retrieval.params import RetrievalParams
from rag.retrieval.retriever import Mode, Retriever

log = logging.getLogger(__name__)
SLOT_WAIT_SHARE = 0.9  # of RAG_REQUEST_TIMEOUT a question may wait for a query slot


def location_of(settings: Settings) -> IndexLocation:
    return IndexLocation(settings.backend, settings.index_dir, settings.milvus_uri,
                         settings.milvus_token)


class Service:
    def __init__(self, index: Index, embedder: Embedder, settings: Settings,
                 params: RetrievalParams | None = None, slots: int | None = None):
        self.index = index
        self.embedder = embedder
        self.settings = settings
        # admission: past the cores, questions answered at once only fight over them (and the
        # GIL): one per core measured best (benchmarks/bench_query.py)
        self.slots = slots or len(os.sched_getaffinity(0))
        self._slots = threading.BoundedSemaphore(self.slots)
        self.retriever = Retriever(index, embedder, params)
        self.chat = Chat(self.ask, llm_from(settings.llm_base_url, settings.llm_model,
                                            settings.llm_api_key, settings.llm_timeout))

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False, for_writing: bool = False,
             embedder: Embedder | None = None, serving: bool = False,
             params: RetrievalParams | None = None, slots: int | None = None) -> Service:
        threads = settings.thread_count(serving)
        set_search_threads(threads)
        if embedder is None:
            embedder = make_embedder(settings.model, runtime=settings.runtime, threads=threads)
        # the model is checked by name; its dimension (which loads the weights) is only
        # needed to create a new index
        wanted = IndexParams(model=embedder.name, dim=0, chunk_tokens=settings.chunk_tokens,
                             chunk_overlap=settings.chunk_overlap)
        index = open_index(location_of(settings), wanted, create=create,
                           for_writing=for_writing, dim=lambda: embedder.dim)
        return cls(index, embedder, settings, params, slots)

    @classmethod
    @contextmanager
    def rebuilding(cls, settings: Settings, embedder: Embedder) -> Iterator[Service]:
        """A service over a new, empty index that replaces the configured one when the block
        succeeds (``rag ingest --rebuild``; see ``rag.index.factory.rebuilding``)."""
        params = IndexParams(embedder.name, embedder.dim, settings.chunk_tokens,
                             settings.chunk_overlap)
        with rebuilding(location_of(settings), params) as fresh:
            service = cls.open(settings.model_copy(update={
                "index_dir": fresh.path, "milvus_uri": fresh.milvus_uri}),
                create=True, for_writing=True, embedder=embedder)
            try:
                yield service
            finally:
                service.close()

    def close(self) -> None:
        self.retriever.close()
        self.index.close()

    def migrate_to(self, uri: str, token: str = "",
                   progress: Progress | None = None) -> tuple[int, dict[str, int]]:
        """Copy this (embedded) index into Milvus at ``uri`` without re-embedding; returns
        the articles copied and the target's counts."""
        from rag.index.migrate import copy_to_milvus

        return copy_to_milvus(self.index, uri, token, progress)

    def limits(self) -> Limits:
        return Limits(max_article_bytes=self.settings.max_article_bytes)

    def ingest_articles(self, articles: Sequence[Article],
                        rejected: Sequence[RejectedInput] = (), *, prune: bool = False,
                        progress: Progress | None = None,
                        whole: bool = False) -> IngestReport:
        """``whole``: one transaction for every article (an HTTP batch is all or nothing)."""
        commit_every = max(1, len(articles)) if whole else self.settings.commit_every
        return ingest(self.index, self.embedder, articles, rejected=rejected,
                      chunk_tokens=self.settings.chunk_tokens,
                      chunk_overlap=self.settings.chunk_overlap, prune=prune,
                      commit_every=commit_every, progress=progress)

    def ingest_paths(self, paths: Sequence[Path], *, prune: bool = False,
                     progress: Progress | None = None, ray: str | None = None,
                     ray_workers: int | None = None) -> IngestReport:
        """Parse ``paths`` here and ingest what they hold; with ``ray`` (``local``, ``auto``
        or a cluster's address) chunking and embedding run on Ray."""
        parsed = parse_paths(paths, self.limits())
        if ray is None:
            return self.ingest_articles(parsed.articles, parsed.rejected, prune=prune,
                                        progress=progress)
        need("ray", "ray", "rag ingest --ray")
        from rag.ingest.ray import EmbedderSpec, ingest_with_ray

        s = self.settings
        return ingest_with_ray(
            self.index, self.embedder, EmbedderSpec(s.model, s.runtime), parsed.articles,
            parsed.rejected, chunk_tokens=s.chunk_tokens, chunk_overlap=s.chunk_overlap,
            commit_every=s.commit_every, address=None if ray == "local" else ray,
            prune=prune, progress=progress, workers=ray_workers)

    def add_records(self, records: Sequence[object]) -> list[dict]:
        """Articles as JSON objects (the CLI's field names and validation) -> one result per
        item, in order: added, updated, unchanged, or rejected with the reason."""
        limits = self.limits()
        articles: list[Article] = []
        results: list[dict] = []
        first: dict[str, int] = {}  # url -> item that brought it (as `rag ingest` dedupes)
        for i, record in enumerate(records):
            try:
                article = article_from_record(record, f"item {i}", limits)
                if article.url in first:
                    raise RejectedInput(f"item {i}", f"duplicate URL {article.url} (already "
                                                     f"item {first[article.url]})")
            except RejectedInput as exc:
                results.append({"index": i, "status": "rejected", "reason": exc.reason})
                continue
            first[article.url] = i
            articles.append(article)
            results.append({"index": i, "url": article.url,
                            "document_id": article.document_id})
        report = self.ingest_articles(articles, whole=True)
        for note in report.notes:
            log.warning("%s", note)
        status = {url: name for name in ("added", "updated", "unchanged")
                  for url in getattr(report, name)}
        for item in results:
            if "url" in item:
                item["status"] = status.get(item["url"], "unchanged")
        return results

    def delete_document(self, document_id: str) -> str:
        """Delete one article (and its chunks) by id; NotFound if there is none. Once the
        deletion is committed it is reported done, even if saving the vectors then fails."""
        url = self.index.delete_document(document_id)
        note = save_after_commit(self.index)
        if note:
            log.warning("%s", note)
        return url

    def document(self, document_id: str) -> dict[str, Any]:
        """One article with its full body; NotFound if there is none."""
        return self.index.document(document_id)

    def documents(self, limit: int, offset: int,
                  filters: Filters | None = None) -> tuple[int, list[dict[str, Any]]]:
        """One page of articles (newest first) passing ``filters``, and how many pass."""
        return self.index.documents(limit, offset, filters)

    def counts(self) -> dict[str, int]:
        return self.index.counts()

    def problems(self) -> list[str]:
        """A full consistency check of the index (``rag stats --check``)."""
        return self.index.problems()

    def ask(self, question: str, k: int = 5, mode: Mode = "hybrid",
            filters: Filters | None = None, answer: bool = True,
            deadline: float | None = None) -> Result:
        """What /query answers: the passages and, if asked, the cited extractive answer.

        One question per core at once; the others wait, but only until most
        (``SLOT_WAIT_SHARE``) of the request's time is gone (``deadline``: the
        ``time.monotonic()`` of its 504; else ``request_timeout`` from now): then it is
        refused with ``Busy`` (503) before any work starts, instead of working for a client
        that has had its 504."""
        timeout = self.settings.request_timeout
        wait = timeout * SLOT_WAIT_SHARE or None
        if deadline is not None:
            wait = deadline - (1 - SLOT_WAIT_SHARE) * timeout - time.monotonic()
        if (wait is not None and wait <= 0) or not self._slots.acquire(timeout=wait):
            raise Busy(f"all {self.slots} query slots (one per core) stayed taken for "
                       f"{SLOT_WAIT_SHARE:.0%} of the request's {timeout:g} s "
                       "(RAG_REQUEST_TIMEOUT); try again later")
        try:
            ranked = self.retriever.rank(question, mode, filters)
            passages = self.retriever.passages(question, ranked.ranking[:k])
            if not answer:
                return Result(question, None, passages)
            similarity = (ranked.nearest if ranked.nearest is not None
                          else self.retriever.similarity(question, filters))
            # whether to answer reads the top ANSWER_PASSAGES whatever k is
            top = (passages if k >= ANSWER_PASSAGES else
                   self.retriever.passages(question, ranked.ranking[:ANSWER_PASSAGES]))
            return Result(question, self.answer(question, passages, top, similarity), passages)
        finally:
            self._slots.release()

    def answer(self, question: str, passages: list[Passage], top: list[Passage],
               similarity: float) -> Answer | None:
        """The cited extractive answer from ``passages``, or None when the index does not
        support one: ``top`` (the best passages, however many were asked for) and
        ``similarity`` (of the question and its nearest chunk within the filters) decide."""
        score = support(question, top, similarity, ignore=self.index.sources())
        return compose_answer(question, passages) if score >= SUPPORT_THRESHOLD else None

    def stats(self) -> dict:
        meta = self.index.meta()
        return {"index_dir": self.index.location, "generation": int(meta["generation"]),
                "format_version": int(meta["format_version"]), "model": meta["model"],
                "dim": int(meta["dim"]), "chunk_tokens": int(meta["chunk_tokens"]),
                "chunk_overlap": int(meta["chunk_overlap"]), **self.index.counts(),
                **self.index.details()}
