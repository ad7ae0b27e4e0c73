"""HTTP edge: parse, call the service, format. The index is opened once, in the lifespan."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag import __version__
from rag.config import Settings
from rag.errors import InvalidRequest, RagError
from rag.schemas import (
    ERROR_RESPONSES,
    DocumentOut,
    DocumentPage,
    Health,
    QueryRequest,
    QueryResponse,
    Stats,
)
from rag.service import Service

log = logging.getLogger("rag.api")


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RagError)
    async def _rag(_: Request, exc: RagError) -> JSONResponse:
        return error(exc.http_status, exc.code, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error(500, "internal_error", "internal error; see the server log")


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """App factory. Pass ``service`` to serve an already opened index (tests, embedding)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service or Service.open(settings, create=True, serving=True)
        # load the model and build the FAISS and BM25 indexes before traffic
        app.state.service.ask("warm up", k=1)
        yield
        app.state.service.store.close()

    app = FastAPI(title="rag: cited retrieval and question answering", version=__version__,
                  lifespan=lifespan, responses=ERROR_RESPONSES)
    install_error_handlers(app)

    @app.post("/query", response_model=QueryResponse, tags=["query"])
    def query(body: QueryRequest, svc: ServiceDep) -> dict:
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
                         answer=body.answer)
        return {**asdict(result), "question": body.question,
                "took_ms": round((time.perf_counter() - started) * 1000, 2)}

    @app.get("/documents/{document_id}", response_model=DocumentOut, tags=["documents"])
    def document(document_id: str, svc: ServiceDep) -> dict:
        return svc.store.document(document_id)

    @app.get("/documents", response_model=DocumentPage, tags=["documents"])
    def documents(svc: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0)] = 0) -> dict:
        total, docs = svc.store.documents(limit, offset)
        return {"total": total, "limit": limit, "offset": offset, "documents": docs}

    @app.get("/health", response_model=Health, tags=["service"])
    def health(svc: ServiceDep) -> dict:
        return {"status": "ok", "ready": True, "documents": svc.store.counts()["documents"]}

    @app.get("/stats", response_model=Stats, tags=["service"])
    def stats(svc: ServiceDep) -> dict:
        return svc.stats()

    return app
