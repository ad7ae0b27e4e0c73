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

from rag.core.errors import BadRequest, Forbidden, Unauthorized

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
    given_headers = request.headers.getlist("authorization")
    if len(given_headers) > 1:  # which one counts would depend on the server: refuse
        raise BadRequest(f"the request has {len(given_headers)} Authorization headers; send "
                         "one")
    header = given_headers[0] if given_headers else ""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("this endpoint needs an API key: Authorization: Bearer <key>")
    if not key_accepted(given.strip(), keys):
        raise Forbidden("the API key is not accepted")


class RequestIds:
    """Echo the client's X-Request-ID (or a new one), log one line per request and count it
    in the app's metrics (by route template, so ids in paths do not multiply series).

    A pure ASGI middleware: Starlette's BaseHTTPMiddleware costs a task and a memory stream
    per request and re-buffers streamed responses. The time logged and counted runs until
    the response is complete (for a stream, its last chunk)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"),
                     "")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        app = scope.get("app")
        status = 500  # what the client gets if the app fails before it responds

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ())
                           if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            telemetry = getattr(app.state, "telemetry", None) if app is not None else None
            if telemetry is not None:
                telemetry.observe(scope["method"], route, status, seconds)
            log.info("request_id=%s method=%s path=%s status=%d ms=%.1f", rid, scope["method"],
                     scope["path"], status, seconds * 1000)
