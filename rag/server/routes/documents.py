"""Documents: read one article (to check a citation), list them, add or update, delete."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from rag.core.config import Settings
from rag.core.documents import Filters
from rag.core.errors import BodyTooLarge, InvalidRequest
from rag.ingest.sources import MAX_JSON_DEPTH, json_depth
from rag.server.deps import Reader, ServiceDep, Writer
from rag.server.schemas import (
    WHOLE,
    AddResponse,
    DeleteResponse,
    DocumentOut,
    DocumentPage,
    FilterName,
    IsoDate,
)

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


def documents_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["documents"])

    @router.get("/documents/{document_id}", response_model=DocumentOut, dependencies=Reader)
    def document(document_id: str, svc: ServiceDep) -> dict:
        """The article with its full body: ``body[char_start:char_end]`` is a passage's text."""
        return svc.document(document_id)

    @router.get("/documents", response_model=DocumentPage, dependencies=Reader)
    def documents(svc: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000), WHOLE] = 100,
                  offset: Annotated[int, Query(ge=0, le=2**62), WHOLE] = 0,
                  source: Annotated[list[FilterName] | None, Query(max_length=100)] = None,
                  author: Annotated[list[FilterName] | None, Query(max_length=100)] = None,
                  published_after: IsoDate | None = None,
                  published_before: IsoDate | None = None) -> dict:
        """A page of articles, newest first, and how many match."""
        if published_after and published_before and published_after > published_before:
            raise RequestValidationError([{  # as /query refuses the same filters
                "loc": ("query", "published_after"), "type": "value_error",
                "msg": "published_after is later than published_before"}])
        filters = Filters(authors=tuple(author or ()), sources=tuple(source or ()),
                          published_after=published_after, published_before=published_before)
        total, docs = svc.documents(limit, offset, filters)
        return {"total": total, "limit": limit, "offset": offset, "documents": docs}

    @router.post("/documents", response_model=AddResponse, dependencies=Writer,
                 openapi_extra=add_body(settings.max_batch_articles))
    async def add_documents(request: Request, svc: ServiceDep) -> dict:
        """Add or update one article or a batch, in one transaction; one result per item,
        in order."""
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
        records = _records(bytes(raw))
        if len(records) > svc.settings.max_batch_articles:
            raise InvalidRequest(f"batch has {len(records):,} articles; the limit is "
                                 f"{svc.settings.max_batch_articles:,} (RAG_MAX_BATCH_ARTICLES)")
        items = await run_in_threadpool(svc.add_records, records)
        counts = {s: sum(i["status"] == s for i in items)
                  for s in ("added", "updated", "unchanged", "rejected")}
        for result, n in counts.items():
            request.app.state.telemetry.articles.labels(result).inc(n)
        return {**counts, "items": items}

    @router.delete("/documents/{document_id}", response_model=DeleteResponse,
                   dependencies=Writer)
    def delete_document(document_id: str, request: Request, svc: ServiceDep) -> dict:
        """Remove an article and its chunks."""
        url = svc.delete_document(document_id)
        request.app.state.telemetry.deleted.inc()
        return {"deleted": document_id, "url": url}

    return router


def _records(raw: bytes) -> list[dict]:
    """The articles of a request body: an object, a list of them, or ``{"articles": [...]}``;
    nesting is measured before the body is parsed."""
    try:
        text = raw.decode("utf-8")
        depth = json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequest(f"body nests JSON {depth:,} levels deep; the limit is "
                                 f"{MAX_JSON_DEPTH}")
        payload = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"body is not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc.msg} at line {exc.lineno}, "
                             f"column {exc.colno}") from exc
    if (isinstance(payload, dict) and isinstance(payload.get("articles"), list)
            and "url" not in payload):
        payload = payload["articles"]
    records = payload if isinstance(payload, list) else [payload]
    if not records or not all(isinstance(r, dict) for r in records):
        raise InvalidRequest("expected an article object, a list of them, or "
                             '{"articles": [...]}')
    return records
