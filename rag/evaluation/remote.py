"""Asking a running server: ``POST /query`` over HTTP, with the standard library only.

``asker`` returns the ``ask(question, k)`` callable ``evaluate.run`` takes, whose results
have what an in-process ``Service.ask`` result has for scoring: ``.passages`` (``.text``,
``.url``, ``.document_id``, ``.title``, ``.rank``) and ``.answer`` (``.text``) or None.
Every failure (no connection, no answer in time, 401/403, any other status, a body that is
not a /query answer) is one ``RagError`` line naming the URL and, when there is one, the
status and the server's message.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rag.core.errors import RagError

MAX_K = 50  # the most passages POST /query returns (its request schema's bound on k)
TIMEOUT = 120.0  # seconds for one answer


@dataclass(frozen=True)
class RemotePassage:
    rank: int
    text: str
    url: str
    document_id: str
    title: str


@dataclass(frozen=True)
class RemoteAnswer:
    text: str


@dataclass(frozen=True)
class RemoteResult:
    passages: list[RemotePassage]
    answer: RemoteAnswer | None


def base_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash; RagError otherwise."""
    base = url.strip().rstrip("/")
    try:
        parts = urlsplit(base)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or parts.query or parts.fragment:
        raise RagError(f"{url!r} is not a server address (http://HOST:PORT)")
    return base


def request(url: str, body: dict[str, Any] | None = None, api_key: str | None = None,
            timeout: float = TIMEOUT) -> Any:
    """GET ``url`` (or POST ``body`` as JSON) -> the decoded JSON answer."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(url, data=data, headers=headers,
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise RagError(_status_line(url, exc.code, exc.read(), api_key)) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise RagError(f"{url}: no answer within {timeout:g} s") from None
        raise RagError(f"{url}: cannot connect ({_one_line(exc.reason)})") from None
    except TimeoutError:
        raise RagError(f"{url}: no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise RagError(f"{url}: connection failed ({_one_line(exc) or type(exc).__name__})"
                       ) from None
    try:
        return json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RagError(f"{url}: the answer is not JSON") from None


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _status_line(url: str, status: int, payload: bytes, api_key: str | None) -> str:
    """``URL: HTTP 403 forbidden: the API key is not accepted`` (the server's error shape
    ``{"error": {"code", "message"}}`` when it sent one), with what to do for 401/403."""
    try:
        error = json.loads(payload)["error"]
        detail = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        detail = payload.decode("utf-8", "replace")[:200]
    hint = {401: " (give the server's key with --api-key)",
            403: " (the key given with --api-key is not accepted)" if api_key
            else " (give the server's key with --api-key)"}.get(status, "")
    return _one_line(f"{url}: HTTP {status} {detail}".rstrip(": ")) + hint


def _result(data: Any, url: str) -> RemoteResult:
    try:
        passages = [RemotePassage(int(p["rank"]), str(p["text"]), str(p["url"]),
                                  str(p["document_id"]), str(p.get("title") or ""))
                    for p in data["passages"]]
        answer = data["answer"]
        return RemoteResult(passages, RemoteAnswer(str(answer["text"])) if answer else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise RagError(f"{url}: the answer is not a /query response (no {exc})") from None


def asker(url: str, api_key: str | None = None, mode: str = "hybrid",
          timeout: float = TIMEOUT) -> Callable[[str, int], RemoteResult]:
    """``ask(question, k)`` through ``POST {url}/query`` (k above ``MAX_K`` is an error)."""
    endpoint = base_url(url) + "/query"

    def ask(question: str, k: int) -> RemoteResult:
        if k > MAX_K:
            raise RagError(f"{endpoint}: k is {k}; the server returns at most {MAX_K} passages")
        body = {"question": question, "k": k, "mode": mode, "answer": True}
        return _result(request(endpoint, body, api_key, timeout), endpoint)

    return ask


def server_stats(url: str, api_key: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """``GET {url}/stats``: the served index's model, chunking and counts (and a check that
    the server answers, and accepts the key, before any question is asked)."""
    endpoint = base_url(url) + "/stats"
    stats = request(endpoint, api_key=api_key, timeout=timeout)
    if not isinstance(stats, dict):
        raise RagError(f"{endpoint}: the answer is not a /stats response")
    return stats
