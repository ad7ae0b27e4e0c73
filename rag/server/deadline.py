"""Request timeouts: a request that has not started its response in time gets 504.

A pure ASGI middleware. The handler is not cancelled (its work runs in a worker thread that
Python cannot interrupt, and a write must not stop half-way): it finishes in the background
and its late response is dropped. Writes keep their own, longer limit; re-posting a batch
whose request timed out is safe, because unchanged articles are reported ``unchanged``.
A response that has started (a stream) is never cut.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

log = logging.getLogger("rag.deadline")
STATE_KEY = "deadline"  # in the request's scope state: time.monotonic() of its 504
EXEMPT = ("/health", "/metrics")
WRITE_SECONDS = 900.0  # POST and DELETE /documents: a large batch embeds for minutes


class Deadline:
    def __init__(self, app, read_seconds: float, write_seconds: float = WRITE_SECONDS):
        self.app = app
        self.read_seconds = read_seconds
        self.write_seconds = write_seconds
        self._running: set[asyncio.Task] = set()  # timed-out handlers still finishing

    def limit(self, scope) -> float:
        path = scope.get("path", "")
        if path.startswith(EXEMPT):
            return 0
        writes = scope.get("method") in ("POST", "DELETE") and path.startswith("/documents")
        return self.write_seconds if writes else self.read_seconds

    async def __call__(self, scope, receive, send):
        seconds = self.limit(scope) if scope["type"] == "http" else 0
        if not seconds:
            await self.app(scope, receive, send)
            return
        started = timed_out = False

        async def guarded_send(message):
            nonlocal started
            if timed_out:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # when the 504 will go out, for a handler that must decide whether to start at all
        scope.setdefault("state", {})[STATE_KEY] = time.monotonic() + seconds
        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if done or started:  # finished, or a stream under way: never cut a response
            await task
            return
        timed_out = True
        self._running.add(task)
        task.add_done_callback(self._finished)
        log.warning("timeout after %.1f s: %s %s (the handler finishes in the background)",
                    seconds, scope.get("method"), scope.get("path"))
        body = json.dumps({"error": {"code": "timeout", "message": (
            f"the request took longer than {seconds:g} s (RAG_REQUEST_TIMEOUT; writes "
            f"{self.write_seconds:g} s); a write still completes, and re-posting it is "
            "safe")}}).encode()
        await send({"type": "http.response.start", "status": 504,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a timed-out request failed afterwards", exc_info=task.exception())


def deadline_of(request) -> float | None:
    """When a request's 504 is due (``time.monotonic()``), or None without a limit."""
    return request.scope.get("state", {}).get(STATE_KEY)
