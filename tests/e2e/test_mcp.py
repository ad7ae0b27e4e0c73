"""The MCP server through the official ``mcp`` SDK's client, over stdio (``rag mcp``) and
over streamable HTTP (``/mcp`` on a real ``rag serve``), against the seed article plus 25 dev
articles; its answers are compared with ``POST /query``'s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import RAG, ROOT, serving

ATACMS = "What range do the ATACMS missiles have?"


@pytest.fixture(scope="module")
def http_server(news_index) -> Iterator[str]:
    with serving(news_index) as base:
        yield base


@asynccontextmanager
async def over_stdio(index: Path):
    params = StdioServerParameters(command=RAG[0], args=[*RAG[1:], "mcp", "--index",
                                                         str(index)], cwd=str(ROOT))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def over_http(url: str, key: str | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=120) as client, \
            streamable_http_client(url, http_client=client) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


def run(session_of: Callable[[], Any], work: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with session_of() as session:
            return await work(session)
    return anyio.run(main)


def spans(passages: list[dict]) -> list[tuple]:
    return [(p.get("id") or p["chunk_id"], p["url"], p["author"], p["published_date"],
             p["text"], p["char_start"], p["char_end"], (p["highlight"] or {}).get("text"))
            for p in passages]


QUERIES = [  # (question, k, filters)
    (ATACMS, 4, {}),
    ("What did the company announce?", 5, {"sources": ["TechCrunch"]}),
    ("Who is being sued and why?", 3, {"published_after": "2023-10-01",
                                       "published_before": "2023-12-31"}),
]


async def searches_and_fetches(session: ClientSession) -> dict[str, Any]:
    tools = {t.name: t for t in (await session.list_tools()).tools}
    results = []
    for question, k, filters in QUERIES:
        found = await session.call_tool("search", {"query": question, "k": k, **filters})
        assert not found.is_error, found.content
        results.append(found.structured_content["results"])
    articles = {}
    for hit in results[0] + results[1]:
        fetched = await session.call_tool("fetch", {"id": hit["id"]})
        assert not fetched.is_error
        articles[hit["id"]] = fetched.structured_content
    empty = await session.call_tool("search", {"query": " \u200b "})
    missing = await session.call_tool("fetch", {"id": "no-such-article"})
    bad_date = await session.call_tool("search", {"query": ATACMS, "published_after": "Nov 3"})
    return {"tools": tools, "results": results, "articles": articles,
            "errors": [(r.is_error, r.content[0].text) for r in (empty, missing, bad_date)]}


@pytest.fixture(scope="module")
def stdio_run(news_index):
    return run(lambda: over_stdio(news_index), searches_and_fetches)


@pytest.fixture(scope="module")
def http_run(http_server):
    return run(lambda: over_http(f"{http_server}/mcp"), searches_and_fetches)


def test_both_tools_are_listed_with_an_output_schema(stdio_run, http_run):
    for listed in (stdio_run["tools"], http_run["tools"]):
        assert set(listed) == {"search", "fetch"}
        search = listed["search"]
        assert search.input_schema["required"] == ["query"]
        assert {"k", "authors", "sources", "published_after", "published_before"} <= set(
            search.input_schema["properties"])
        assert "results" in search.output_schema["properties"]
        assert {"id", "title", "text", "url", "metadata"} <= set(
            listed["fetch"].output_schema["properties"])


def test_search_returns_what_post_query_returns(stdio_run, http_run, http_server):
    for (question, k, filters), over_stdio_, over_http_ in zip(
            QUERIES, stdio_run["results"], http_run["results"], strict=True):
        body = {"question": question, "k": k}
        if filters:
            body["filters"] = filters
        r = httpx.post(f"{http_server}/query", json=body, timeout=120)
        assert r.status_code == 200
        expected = spans(r.json()["passages"])
        assert expected and spans(over_stdio_) == expected and spans(over_http_) == expected
    assert "190 miles" in stdio_run["results"][0][0]["text"] + stdio_run["results"][0][1]["text"]
    assert all(p["source"] == "TechCrunch" for p in stdio_run["results"][1])
    assert all("2023-10-01" <= p["published_date"] <= "2023-12-31"
               for p in stdio_run["results"][2])


def test_fetch_returns_the_article_every_passage_slices_back_into(stdio_run):
    hits = stdio_run["results"][0] + stdio_run["results"][1]
    for hit in hits:
        article = stdio_run["articles"][hit["id"]]
        assert article["url"] == hit["url"] and article["title"] == hit["title"]
        assert article["text"][hit["char_start"]:hit["char_end"]] == hit["text"]
        h = hit["highlight"]
        assert article["text"][h["char_start"]:h["char_end"]] == h["text"]
        assert article["metadata"]["author"] == hit["author"]


def test_errors_are_tool_errors_with_the_http_messages(stdio_run, http_run, http_server):
    empty = httpx.post(f"{http_server}/query", json={"question": " \u200b "}).json()
    missing = httpx.get(f"{http_server}/documents/no-such-article").json()
    for errors in (stdio_run["errors"], http_run["errors"]):
        assert [e[0] for e in errors] == [True, True, True]
        # the SDK puts "Error executing tool <name>: " before a tool error's message
        messages = [text.removeprefix("Error executing tool search: ")
                    .removeprefix("Error executing tool fetch: ") for _, text in errors]
        assert messages[:2] == [empty["error"]["message"], missing["error"]["message"]]
        assert messages[2] == "published_after: expected a date as YYYY-MM-DD"


def test_protected_reads_need_a_key_at_mcp_too(news_index):
    env = {"RAG_API_KEYS": "s3cret", "RAG_PROTECT_READS": "true"}
    with serving(news_index, env) as base:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"}}}
        headers = {"Accept": "application/json, text/event-stream"}
        for path in ("/mcp", "/mcp/"):
            refused = httpx.post(base + path, json=init, headers=headers)
            assert refused.status_code == 401 and refused.json()["error"]["code"]
            wrong = httpx.post(base + path, json=init,
                               headers={**headers, "Authorization": "Bearer nope"})
            assert wrong.status_code in (401, 403)
        found = run(lambda: over_http(f"{base}/mcp", key="s3cret"),
                    lambda s: s.call_tool("search", {"query": ATACMS, "k": 2}))
        assert not found.is_error and len(found.structured_content["results"]) == 2
