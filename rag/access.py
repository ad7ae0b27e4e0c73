"""API keys and request ids for the HTTP edge.

Keys come from ``RAG_API_KEYS`` (comma-separated). Write endpoints always need one when keys
are set; reads only with ``RAG_PROTECT_READS``. A missing key is 401, a wrong one 403; keys
are compared in constant time against every configured key and never logged.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid

from fastapi import Request
from starlette.middleware.base import BaseHTTPMiddleware

from rag.errors import Forbidden, Unauthorized

log = logging.getLogger("rag.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def key_accepted(given: str, keys: list[str]) -> bool:
    ok = False
    for key in keys:  # no early exit: the time does not depend on which key matched
        ok |= hmac.compare_digest(given.encode(), key.encode())
    return ok


def check_key(request: Request, keys: list[str]) -> None:
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("this endpoint needs an API key: Authorization: Bearer <key>")
    if not key_accepted(given.strip(), keys):
        raise Forbidden("the API key is not accepted")


class RequestIds(BaseHTTPMiddleware):
    """Echo the client's X-Request-ID (or a new one), log one line per request and count it
    in the app's metrics (by route template, so ids in paths do not multiply series)."""

    async def dispatch(self, request: Request, call_next):
        given = request.headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.state.request_id = rid
        started = time.perf_counter()
        response = await call_next(request)
        seconds = time.perf_counter() - started
        response.headers["X-Request-ID"] = rid
        route = getattr(request.scope.get("route"), "path", "unmatched")
        telemetry = getattr(request.app.state, "telemetry", None)
        if telemetry is not None:
            telemetry.observe(request.method, route, response.status_code, seconds)
        log.info("request_id=%s method=%s path=%s status=%d ms=%.1f", rid, request.method,
                 request.url.path, response.status_code, seconds * 1000)
        return response
