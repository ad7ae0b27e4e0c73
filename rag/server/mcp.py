"""An MCP server for agents (Claude Desktop, Claude Code, ChatGPT connectors, any MCP client),
built on the official ``mcp`` SDK: ``rag mcp`` over stdio, and streamable HTTP at ``/mcp`` on
``rag serve`` (under the same API-key rules as the other reads).

Two tools, the search/fetch pair that ChatGPT connectors and deep-research clients expect:
``search`` returns passages (each ``id`` fetchable) as structured content with an output
schema, ``fetch`` returns the whole article, so that every passage's offsets slice back into
its ``text``. A bad argument or a missing article is an MCP tool error with the HTTP API's
message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from datetime import date
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from starlette.requests import Request

from rag import __version__
from rag.core.documents import MAX_FILTER_CHARS, Filters, has_visible_text
from rag.core.errors import RagError
from rag.service import Service

MAX_FILTER_NAMES = 100  # as in POST /query
INSTRUCTIONS = (
    "Search indexed news articles. `search` returns passages with their source URL, author, "
    "date and exact character span; cite them by URL. `fetch` returns a whole article by a "
    "passage's or an article's id.")


class Highlight(BaseModel):
    text: str
    char_start: int
    char_end: int


class Hit(BaseModel):
    id: str = Field(description="The passage's id (article id:chunk number); fetch takes it.")
    title: str
    url: str
    author: str | None
    published_date: str | None
    source: str
    text: str
    char_start: int = Field(description="Where the passage starts in the article's text.")
    char_end: int
    highlight: Highlight | None = Field(description="Its best supporting sentence.")


class SearchResults(BaseModel):
    results: list[Hit]


class Article(BaseModel):
    id: str
    title: str
    text: str
    url: str
    metadata: dict[str, Any]


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolError(f"{name}: expected a date as YYYY-MM-DD") from None


def _names(values: list[str] | None, name: str) -> tuple[str, ...]:
    if values is not None and len(values) > MAX_FILTER_NAMES:
        raise ToolError(f"{name}: List should have at most {MAX_FILTER_NAMES} items")
    for value in values or ():
        if len(value) > MAX_FILTER_CHARS:
            raise ToolError(f"{name}: String should have at most {MAX_FILTER_CHARS} characters")
    return tuple(values or ())


def build(service: Callable[[], Service]) -> MCPServer:
    """The MCP server over the service ``service()`` returns (opened lazily by the caller)."""
    # the SDK's constructor would give the root logger a handler of its own (logging's
    # basicConfig): this service's logging stays as configured, and the SDK's INFO lines (one
    # a request) are left out
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    mcp = MCPServer("rag", version=__version__, instructions=INSTRUCTIONS)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("mcp").setLevel(logging.WARNING)

    def run_search(query: str, k: int, authors: list[str] | None, sources: list[str] | None,
                   published_after: str | None, published_before: str | None) -> SearchResults:
        svc = service()
        if not has_visible_text(query):
            raise ToolError("question is empty (no visible text: only white space or "
                            "invisible characters)")
        if len(query) > svc.settings.max_question_chars:
            raise ToolError(f"question is {len(query):,} characters; the limit is "
                            f"{svc.settings.max_question_chars:,} (RAG_MAX_QUESTION_CHARS)")
        if k < 1 or k > 50:
            raise ToolError(f"k: Input should be {'greater' if k < 1 else 'less'} than or "
                            f"equal to {1 if k < 1 else 50}")
        after, before = _day(published_after, "published_after"), _day(published_before,
                                                                        "published_before")
        if after and before and after > before:
            raise ToolError("published_after is later than published_before")
        filters = Filters(authors=_names(authors, "authors"), sources=_names(sources, "sources"),
                          published_after=after, published_before=before)
        try:
            result = svc.ask(query.strip(), k=k, filters=filters, answer=False)
        except RagError as exc:
            raise ToolError(str(exc)) from None
        return SearchResults(results=[Hit(
            id=p.chunk_id, title=p.title, url=p.url, author=p.author,
            published_date=p.published_date, source=p.source, text=p.text,
            char_start=p.char_start, char_end=p.char_end,
            highlight=Highlight(**vars(p.highlight)) if p.highlight else None)
            for p in result.passages])

    def run_fetch(id: str) -> Article:  # noqa: A002 - the name the convention uses
        try:
            doc = service().document(id.split(":", 1)[0])
        except RagError as exc:
            raise ToolError(str(exc)) from None
        return Article(id=doc["document_id"], title=doc["title"], text=doc["body"],
                       url=doc["url"], metadata={
                           k: doc[k] for k in ("author", "authors", "published_date", "source",
                                               "domain", "summary", "category", "chunks")})

    # async, with the work in a worker thread: a search must not hold up the server's loop

    @mcp.tool(description="Search the indexed news articles; the best passages first, each "
              "with its source URL, author, date and exact span in the article.")
    async def search(query: str, k: int = 5, authors: list[str] | None = None,
                     sources: list[str] | None = None, published_after: str | None = None,
                     published_before: str | None = None) -> SearchResults:
        return await anyio.to_thread.run_sync(lambda: run_search(
            query, k, authors, sources, published_after, published_before))

    @mcp.tool(description="The whole article of a search result's id (or an article id): its "
              "text, URL and metadata.")
    async def fetch(id: str) -> Article:  # noqa: A002
        return await anyio.to_thread.run_sync(run_fetch, id)

    return mcp


class McpEdge:
    """The mounted MCP app behind the read rules: with RAG_PROTECT_READS and API keys set, a
    request needs ``Authorization: Bearer <key>`` (401 / 403 in the one error shape)."""

    def __init__(self, app: Any, keys: Callable[[], list[str]], protect: bool):
        self.app, self.keys, self.protect = app, keys, protect

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.protect:
            from rag.server.access import check_key
            from rag.server.errors import error

            try:
                check_key(Request(scope), self.keys())
            except RagError as exc:
                await error(exc.http_status, exc.code, str(exc))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class McpPath:
    """``/mcp`` and ``/mcp/`` both reach the mounted endpoint (a mount alone redirects the
    bare path, which some clients do not follow for a POST)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") == "/mcp":
            scope = {**scope, "path": "/mcp/", "raw_path": b"/mcp/"}
        await self.app(scope, receive, send)
