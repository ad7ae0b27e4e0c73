"""One error shape for every failure: ``{"error": {"code": ..., "message": ...}}``.

Domain errors carry their own status and code (rag/core/errors.py); request validation is a
422 whose message names the field, and hints at the field meant when an unknown one is close
to a known one (``top_k`` -> ``k``), at JSON syntax errors' line and column, and at a body
sent without a JSON content type.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.core.errors import RagError

log = logging.getLogger("rag.server")
# names other services use for this API's fields
SYNONYMS = {"top_k": "k", "topk": "k", "top_n": "k", "limit": "k", "n": "k", "query": "question",
            "q": "question", "text": "question", "author": "authors", "source": "sources",
            "publisher": "sources", "after": "published_after", "before": "published_before",
            "since": "published_after", "until": "published_before", "filter": "filters",
            "search_type": "mode"}


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _fields_at(model: type[BaseModel] | None, path: list[Any]) -> list[str]:
    """The field names of the (sub-)model at ``path`` inside ``model``."""
    for step in path:
        if model is None or not isinstance(step, str) or step not in model.model_fields:
            return []
        model = _model_of(model.model_fields[step].annotation)
    return list(model.model_fields) if model is not None else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _suggestion(name: str, known: list[str]) -> str:
    meant = SYNONYMS.get(name.lower())
    if meant not in known:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        meant = close[0] if close else None
    return f"; did you mean `{meant}`?" if meant else ""


def validation_message(exc: RequestValidationError, body_model: type[BaseModel] | None,
                       content_type: str) -> str:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        doc = exc.body if isinstance(exc.body, str) else ""
        pos = first["loc"][-1] if isinstance(first["loc"][-1], int) else 0
        line, column = doc.count("\n", 0, pos) + 1, pos - (doc.rfind("\n", 0, pos) + 1) + 1
        reason = first.get("ctx", {}).get("error", "invalid JSON")
        return f"body is not valid JSON: {reason} at line {line}, column {column}"
    if (body_model is not None and "json" not in content_type
            and any(tuple(e.get("loc", ())) == ("body",) for e in errors)):
        sent = content_type or "no Content-Type"
        return (f"send the body as JSON with Content-Type: application/json (this request "
                f"had {sent})")
    parts = []
    for err in errors[:5]:
        # without "body" and pydantic's names of union members ("function-after[...]")
        loc = [p for p in err.get("loc", ())
               if p != "body" and not (isinstance(p, str) and "[" in p)]
        where = ".".join(str(p) for p in loc) or "body"
        if where == "question" and err.get("type") == "string_pattern_mismatch":
            parts.append("question is empty (no visible text: only white space or invisible "
                         "characters)")
        elif err.get("type") == "extra_forbidden" and loc:
            name = str(loc[-1])
            known = _fields_at(body_model, loc[:-1])
            parts.append(f"{where}: unknown field{_suggestion(name, known)}")
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _body_model(request: Request) -> type[BaseModel] | None:
    route = request.scope.get("route")
    body = getattr(getattr(route, "body_field", None), "field_info", None)
    return _model_of(getattr(body, "annotation", None))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = validation_message(exc, _body_model(request),
                                     request.headers.get("content-type", "").lower())
        return error(422, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": bytes that are not UTF-8
            return error(422, "invalid_request", "body is not valid JSON (UTF-8)")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RagError)
    async def _rag(_: Request, exc: RagError) -> JSONResponse:
        if exc.http_status >= 500:  # the service's trouble, not the client's: one log line
            log.warning("%s: %s", exc.code, exc)
        return error(exc.http_status, exc.code, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error(500, "internal_error", "internal error; see the server log")
