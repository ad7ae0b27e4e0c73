"""The core behind both edges: one opened index, its embedder and retriever."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rag.answer import SUPPORT_THRESHOLD, compose_answer, support
from rag.config import Settings
from rag.documents import Answer, Article, Filters, Passage
from rag.embedding import Embedder, make_embedder
from rag.errors import Busy, RejectedInput
from rag.headroom import Headroom
from rag.ingest import IngestReport, Progress, ingest, save_after_commit
from rag.retriever import Mode, RetrievalParams, Retriever
from rag.sources import Limits, article_from_record, parse_paths
from rag.store import IndexParams, Store
from rag.vectors import set_threads

if TYPE_CHECKING:
    from rag.milvus_store import MilvusStore


log = logging.getLogger(__name__)
SLOT_WAIT_SHARE = 0.9  # of RAG_REQUEST_TIMEOUT a question may wait for a query slot


@dataclass
class Result:
    question: str
    answer: Answer | None
    passages: list[Passage]


def open_store(settings: Settings, params: IndexParams, dim, *, create: bool = False,
               check_chunking: bool = False) -> Store | MilvusStore:
    """The configured backend's index; ``dim()`` is asked only when one is created."""
    if settings.backend == "milvus":
        from rag.milvus_store import MilvusStore

        return MilvusStore.open(settings.milvus_location(), params, create=create,
                                check_chunking=check_chunking, token=settings.milvus_token,
                                dim=dim)
    if create and not Store.exists(settings.index_dir):
        params = replace(params, dim=dim())
    return Store.open(settings.index_dir, params, create=create, check_chunking=check_chunking)


class Service:
    def __init__(self, store: Store, embedder: Embedder, settings: Settings):
        self.store = store
        # admission: past the cores, questions answered at once only fight over them (and the
        # GIL); measured in eval/bench_query.py
        self._slots = threading.BoundedSemaphore(settings.slot_count())
        self._asking = 0  # questions in ask(), waiting for a slot or not
        self._asking_lock = threading.Lock()
        self.headroom = Headroom()
        # requests the process is serving, this question's own included (the HTTP edge
        # sets it): a question is alone only if it is the one
        self.company: Callable[[], int] = lambda: 0
        self.embedder = embedder
        self.settings = settings
        self.retriever = Retriever(store, embedder, RetrievalParams(
            depth=settings.depth, rrf_k=settings.rrf_k, keyword_weight=settings.keyword_weight,
            sentence_weight=settings.sentence_weight,
            hint_weight=settings.hint_weight, clause_weight=settings.clause_weight,
            clause_dense=settings.clause_dense, clause_pooled=settings.clause_pooled,
            source_hints=settings.source_hints,
            date_hints=settings.date_hints, doc_decay=settings.doc_decay,
            max_per_doc=settings.max_per_doc,
            keyword_backend=settings.keyword_backend))

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False, for_writing: bool = False,
             embedder: Embedder | None = None, serving: bool = False) -> Service:
        threads = settings.thread_count(serving)
        set_threads(threads)
        if embedder is None:
            embedder = make_embedder(settings.model, device=settings.device, threads=threads,
                                     batch_size=settings.batch_size, backend=settings.runtime)
        # the model is checked by name; its dimension (which loads the weights) is only
        # needed to create a new index
        params = IndexParams(model=embedder.name, dim=0, chunk_tokens=settings.chunk_tokens,
                             chunk_overlap=settings.chunk_overlap)
        store = open_store(settings, params, lambda: embedder.dim, create=create,
                           check_chunking=for_writing)
        return cls(store, embedder, settings)

    def limits(self) -> Limits:
        return Limits(max_article_bytes=self.settings.max_article_bytes)

    def ingest_articles(self, articles: Sequence[Article],
                        rejected: Sequence[RejectedInput] = (), *, prune: bool = False,
                        progress: Progress | None = None,
                        whole: bool = False) -> IngestReport:
        """``whole``: one transaction for every article (an HTTP batch is all or nothing)."""
        commit_every = max(1, len(articles)) if whole else self.settings.commit_every
        return ingest(self.store, self.embedder, articles, rejected=rejected,
                      chunk_tokens=self.settings.chunk_tokens,
                      chunk_overlap=self.settings.chunk_overlap, prune=prune,
                      commit_every=commit_every, progress=progress)

    def ingest_paths(self, paths: Sequence[Path], *, prune: bool = False,
                     progress: Progress | None = None) -> IngestReport:
        parsed = parse_paths(paths, self.limits())
        return self.ingest_articles(parsed.articles, parsed.rejected, prune=prune,
                                    progress=progress)

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
        url = self.store.delete_document(document_id)
        note = save_after_commit(self.store)
        if note:
            log.warning("%s", note)
        return url

    def query(self, question: str, k: int = 5, mode: Mode = "hybrid",
              filters: Filters | None = None, alone: bool = False) -> list[Passage]:
        return self.retriever.search(question, k=k, mode=mode, filters=filters, alone=alone)

    def ask(self, question: str, k: int = 5, mode: Mode = "hybrid",
            filters: Filters | None = None, answer: bool = True,
            deadline: float | None = None) -> Result:
        """What /query answers: the passages and, if asked, the cited extractive answer.

        ``query_slots`` questions at once; the others wait, but only until most
        (``SLOT_WAIT_SHARE``) of the request's time is gone (``deadline``: the
        ``time.monotonic()`` of its 504; else ``request_timeout`` from now): then it is
        refused with ``Busy`` (503) before any work starts, instead of working for a client
        that has had its 504.

        A question alone here (no other question in ask(), no other request being served),
        on a machine that other processes leave idle, has every core for its model call
        (``alone_wide``; rag/headroom.py)."""
        with self._asking_lock:
            self._asking += 1
            alone = self._asking == 1
        try:
            alone = (alone and self.settings.alone_wide and self.company() <= 1
                     and self.headroom.idle())
            return self._ask(question, k, mode, filters, answer, deadline, alone)
        finally:
            with self._asking_lock:
                self._asking -= 1

    def _ask(self, question: str, k: int, mode: Mode, filters: Filters | None, answer: bool,
             deadline: float | None, alone: bool) -> Result:
        timeout = self.settings.request_timeout
        wait = timeout * SLOT_WAIT_SHARE or None
        if deadline is not None:
            wait = deadline - (1 - SLOT_WAIT_SHARE) * timeout - time.monotonic()
        if (wait is not None and wait <= 0) or not self._slots.acquire(timeout=wait):
            raise Busy(f"no query slot (RAG_QUERY_SLOTS={self.settings.slot_count()}) came "
                       f"free within {SLOT_WAIT_SHARE:.0%} of the request's {timeout:g} s "
                       "(RAG_REQUEST_TIMEOUT); try again later")
        try:
            passages = self.query(question, k=k, mode=mode, filters=filters, alone=alone)
            if not answer:
                return Result(question, None, passages)
            return Result(question, self.answer(question, passages, filters), passages)
        finally:
            self._slots.release()

    def answer(self, question: str, passages: list[Passage],
               filters: Filters | None = None) -> Answer | None:
        """The cited extractive answer, or None when the index does not support one."""
        similarity = self.retriever.similarity(question, filters)
        score = support(question, passages, similarity, ignore=self.store.sources())
        return compose_answer(question, passages) if score >= SUPPORT_THRESHOLD else None

    def stats(self) -> dict:
        meta = self.store.meta()
        where = getattr(self.store, "uri", None) or str(self.store.dir)
        return {"index_dir": where, "generation": int(meta["generation"]),
                "format_version": int(meta["format_version"]), "model": meta["model"],
                "dim": int(meta["dim"]), "chunk_tokens": int(meta["chunk_tokens"]),
                "chunk_overlap": int(meta["chunk_overlap"]), **self.store.counts(),
                **({"interrupted_writes": len(self.store.interrupted())}
                   if hasattr(self.store, "interrupted") else {})}
