"""HTTP edge: parse, call the service, format. The index is opened once, in the lifespan."""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag import __version__
from rag.access import RequestIds, check_key
from rag.chat import Chat
from rag.chat_api import chat_router
from rag.config import Settings
from rag.deadline import Deadline, deadline_of
from rag.documents import Filters
from rag.errors import BodyTooLarge, InvalidRequest, RagError
from rag.llm import llm_from
from rag.schemas import (
    ERROR_RESPONSES,
    WHOLE,
    AddResponse,
    DeleteResponse,
    DocumentOut,
    DocumentPage,
    FilterName,
    Health,
    IsoDate,
    QueryRequest,
    QueryResponse,
    Stats,
)
from rag.service import Service
from rag.sources import MAX_JSON_DEPTH, json_depth
from rag.telemetry import Telemetry

log = logging.getLogger("rag.api")
WEB = Path(__file__).parent / "web"


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if loc == "question" and err.get("type") == "string_pattern_mismatch":
            parts.append("question is empty (no visible text: only white space or invisible "
                         "characters)")
            continue
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI, backend: str = "embedded") -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": bytes that are not UTF-8
            return error(422, "invalid_request", "body is not valid JSON (UTF-8)")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RagError)
    async def _rag(_: Request, exc: RagError) -> JSONResponse:
        return error(exc.http_status, exc.code, str(exc))

    async def _milvus(_: Request, exc: Exception) -> JSONResponse:
        log.error("Milvus: %s", exc)  # unreachable or refusing; one line, no traceback
        return error(503, "index_unavailable", "the Milvus index is unavailable")

    if backend == "milvus":  # handled here, not below: Starlette re-raises (and logs) those
        import grpc
        from pymilvus.exceptions import MilvusException

        app.add_exception_handler(MilvusException, _milvus)
        app.add_exception_handler(grpc.RpcError, _milvus)  # some pass through pymilvus as-is

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if type(exc).__module__.startswith(("pymilvus", "grpc")):  # any other Milvus failure
            return await _milvus(request, exc)
        log.exception("unhandled error")
        return error(500, "internal_error", "internal error; see the server log")


async def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
# (async: FastAPI runs a plain `def` dependency in the thread pool, a hop per request)


async def require_write_key(request: Request) -> None:
    check_key(request, request.app.state.settings.keys())


async def require_read_key(request: Request) -> None:
    settings = request.app.state.settings
    if settings.protect_reads:
        check_key(request, settings.keys())


Reader = [Depends(require_read_key)]
Writer = [Depends(require_write_key)]


ARTICLE_EXAMPLE = {"url": "https://example.com/story", "title": "A story",
                   "body": "The text of the article.", "author": "A. Writer",
                   "source": "Example News", "published_at": "2024-11-26"}
ARTICLE_SCHEMA = {
    "type": "object", "additionalProperties": True,
    "description": "One article, fields as `rag ingest` JSON (aliases such as `link`, "
                   "`content`, `published_date` accepted). Each item is validated on its own: "
                   "a bad one is reported `rejected` with its reason, the others are ingested.",
    "required": ["url", "body"],
    "properties": {
        "url": {"type": "string", "pattern": r"^https?://[^\s/?#]+[^\s]*$"},
        "body": {"type": "string", "pattern": r"\S"},
        **{name: {"type": "string"} for name in (
            "title", "author", "source", "published_at", "summary", "category")}}}


def add_body(max_batch: int) -> dict:
    batch = {"type": "array", "items": ARTICLE_SCHEMA, "minItems": 1, "maxItems": max_batch}
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"anyOf": [
            ARTICLE_SCHEMA, batch,
            {"type": "object", "required": ["articles"], "properties": {"articles": batch}}]},
        "example": ARTICLE_EXAMPLE}}}}


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """App factory. Pass ``service`` to serve an already opened index (tests, embedding)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service or Service.open(settings, serving=True)
        app.state.chat = Chat(app.state.service, llm_from(settings))
        app.state.in_flight = 0
        # a question is alone only if no other request is being served (RequestIds counts)
        app.state.service.company = lambda: app.state.in_flight
        app.state.telemetry.watch_index(app.state.service.store.counts)
        # load the model and build the FAISS and BM25 indexes before traffic
        app.state.service.ask("warm up", k=1)
        # then keep the ~290k objects loaded so far (at the dev index) out of the collector's
        # sight: a full collection took 200 ms before and 5 ms after (a pause that would land
        # on some query), and queries only make short-lived garbage
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()
        app.state.service.store.shutdown()

    app = FastAPI(title="rag: cited retrieval and question answering", version=__version__,
                  lifespan=lifespan, responses=ERROR_RESPONSES)
    install_error_handlers(app, settings.backend)
    app.state.settings = settings
    app.state.telemetry = Telemetry()
    app.add_middleware(Deadline, read_seconds=settings.request_timeout,
                       write_seconds=settings.write_timeout)
    app.add_middleware(RequestIds)  # outermost: timeouts get a request id and are counted
    if settings.origins():
        app.add_middleware(CORSMiddleware, allow_origins=settings.origins(),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"])

    app.include_router(chat_router(Reader))
    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The chat page (no build step; it calls /v1/chat/completions)."""
        return FileResponse(WEB / "index.html", headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
            "Cache-Control": "no-cache"})

    @app.post("/query", response_model=QueryResponse, tags=["query"], dependencies=Reader)
    async def query(body: QueryRequest, svc: ServiceDep, request: Request) -> dict:
        # one hop to the thread pool: a plain `def` endpoint with a response_model takes two
        # (the handler, then the response's validation); measured ~0.3 ms a request
        return await run_in_threadpool(answer_query, body, svc, request)

    def answer_query(body: QueryRequest, svc: Service, request: Request) -> dict:
        started = time.perf_counter()
        question = body.question.strip()
        if not question:
            raise InvalidRequest("question is empty")
        limit = svc.settings.max_question_chars
        if len(question) > limit:
            raise InvalidRequest(f"question is {len(question):,} characters; the limit is "
                                 f"{limit:,} (RAG_MAX_QUESTION_CHARS)")
        filters = body.filters.to_domain() if body.filters else None
        result = svc.ask(question, k=body.k, mode=body.mode, filters=filters,
                         answer=body.answer, deadline=deadline_of(request))
        return {**asdict(result), "question": body.question,
                "took_ms": round((time.perf_counter() - started) * 1000, 2)}

    @app.get("/documents/{document_id}", response_model=DocumentOut, tags=["documents"],
             dependencies=Reader)
    def document(document_id: str, svc: ServiceDep) -> dict:
        return svc.store.document(document_id)

    @app.get("/documents", response_model=DocumentPage, tags=["documents"], dependencies=Reader)
    def documents(svc: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000), WHOLE] = 100,
                  offset: Annotated[int, Query(ge=0, le=2**62), WHOLE] = 0,
                  source: Annotated[list[FilterName] | None, Query(max_length=100)] = None,
                  author: Annotated[list[FilterName] | None, Query(max_length=100)] = None,
                  published_after: IsoDate | None = None,
                  published_before: IsoDate | None = None) -> dict:
        if published_after and published_before and published_after > published_before:
            raise RequestValidationError([{  # as /query refuses the same filters
                "loc": ("query", "published_after"), "type": "value_error",
                "msg": "published_after is later than published_before"}])
        filters = Filters(authors=tuple(author or ()), sources=tuple(source or ()),
                          published_after=published_after, published_before=published_before)
        total, docs = svc.store.documents(limit, offset, filters)
        return {"total": total, "limit": limit, "offset": offset, "documents": docs}

    @app.post("/documents", response_model=AddResponse, tags=["documents"],
              dependencies=Writer,
              openapi_extra=add_body(settings.max_batch_articles))
    async def add_documents(request: Request, svc: ServiceDep) -> dict:
        """Add or update one article or a batch; one result per item, in order."""
        limit = svc.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(f"request body is {int(declared):,} bytes; the limit is "
                               f"{limit:,} (RAG_MAX_BODY_BYTES)")
        raw = bytearray()
        async for part in request.stream():
            raw.extend(part)
            if len(raw) > limit:
                raise BodyTooLarge(f"request body is over the limit of {limit:,} bytes "
                                   "(RAG_MAX_BODY_BYTES)")
        try:
            text = raw.decode("utf-8")
            depth = json_depth(text)
            if depth > MAX_JSON_DEPTH:
                raise InvalidRequest(f"body nests JSON {depth:,} levels deep; the limit is "
                                     f"{MAX_JSON_DEPTH}")
            payload = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRequest(f"body is not valid JSON: {exc}") from exc
        if (isinstance(payload, dict) and isinstance(payload.get("articles"), list)
                and "url" not in payload):
            payload = payload["articles"]
        records = payload if isinstance(payload, list) else [payload]
        if not records or not all(isinstance(r, dict) for r in records):
            raise InvalidRequest("expected an article object, a list of them, or "
                                 '{"articles": [...]}')
        if len(records) > svc.settings.max_batch_articles:
            raise InvalidRequest(f"batch has {len(records):,} articles; the limit is "
                                 f"{svc.settings.max_batch_articles:,} (RAG_MAX_BATCH_ARTICLES)")
        items = await run_in_threadpool(svc.add_records, records)
        counts = {s: sum(i["status"] == s for i in items)
                  for s in ("added", "updated", "unchanged", "rejected")}
        for result, n in counts.items():
            request.app.state.telemetry.articles.labels(result).inc(n)
        return {**counts, "items": items}

    @app.delete("/documents/{document_id}", response_model=DeleteResponse,
                tags=["documents"], dependencies=Writer)
    def delete_document(document_id: str, request: Request, svc: ServiceDep) -> dict:
        url = svc.delete_document(document_id)
        request.app.state.telemetry.deleted.inc()
        return {"deleted": document_id, "url": url}

    @app.get("/metrics", tags=["service"], dependencies=Reader,
             response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {}},
                              "description": "Prometheus text format"}})
    def metrics(request: Request) -> Response:
        """Requests by route and status, latency histograms, index size, write counters."""
        return Response(generate_latest(request.app.state.telemetry.registry),
                        media_type=CONTENT_TYPE_LATEST)

    @app.get("/health", response_model=Health, tags=["service"])
    def health(svc: ServiceDep) -> dict:
        return {"status": "ok", "ready": True, "documents": svc.store.counts()["documents"]}

    @app.get("/health/live", tags=["service"])
    def live() -> dict:
        """The process answers (no index access)."""
        return {"status": "ok"}

    @app.get("/health/ready", response_model=Health, tags=["service"])
    def ready(request: Request) -> JSONResponse:
        """The index is open and readable; 503 otherwise."""
        svc = getattr(request.app.state, "service", None)
        try:
            docs = svc.store.counts()["documents"] if svc else None
        except Exception:  # noqa: BLE001 - any failure to read means not ready
            docs = None
        if docs is None:
            return error(503, "not_ready", "the index is not open")
        return JSONResponse({"status": "ok", "ready": True, "documents": docs})

    @app.get("/stats", response_model=Stats, tags=["service"], dependencies=Reader)
    def stats(svc: ServiceDep) -> dict:
        return svc.stats()

    def openapi() -> dict:
        """The generated schema, plus the limits that come from settings."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            question = schema["components"]["schemas"]["QueryRequest"]["properties"]["question"]
            question["maxLength"] = settings.max_question_chars
            chat = schema["components"]["schemas"]["ChatRequest"]["properties"]["messages"]
            chat["contains"]["properties"]["content"]["maxLength"] = settings.max_question_chars
        return app.openapi_schema

    app.openapi = openapi
    return app


def app_from_environment() -> FastAPI:
    """The app of one `rag serve --workers N` process, configured by RAG_* variables."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(Settings())
