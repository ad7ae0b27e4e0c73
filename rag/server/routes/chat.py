"""OpenAI-compatible HTTP edge: ``GET /v1/models`` and ``POST /v1/chat/completions``.

The reply text carries ``[n]`` markers; the citations travel in an extra ``citations`` field
(non-streaming) or in a last chunk before ``data: [DONE]`` (streaming), so they survive the
OpenAI protocol; chat frontends also get them in the form they show (rag/chat/sources.py).
A frontend's own task prompts (titles, tags, follow-ups) are answered without retrieving
(rag/chat/tasks.py). ``usage`` counts tokens with the embedding model's tokenizer. Errors
keep this service's one error shape.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from rag.chat.conversation import Turn
from rag.chat.sources import markdown_sources, source_events, source_item
from rag.chat.tasks import task_reply
from rag.chat.turn import Chat
from rag.core.errors import InvalidRequest, RagError
from rag.server.chat_schemas import ChatCompletion, ChatRequest, ModelList, RagOptions
from rag.server.deadline import deadline_of
from rag.server.deps import Reader
from rag.server.schemas import NOT_ONLY_SPACE, ErrorResponse


def turns_of(body: ChatRequest, max_chars: int) -> list[Turn]:
    """The messages with text, ending at the question: the last user message. Messages after
    it (a trailing assistant or tool message) are not part of the question."""
    turns = [Turn(m.role, m.text()) for m in body.messages]
    turns = [t for t in turns if re.search(NOT_ONLY_SPACE, t.content)]
    last = max((i for i, t in enumerate(turns) if t.role == "user"), default=None)
    if last is None:
        raise InvalidRequest("the conversation has no user message with text (the question)")
    if len(turns[last].content) > max_chars:
        raise InvalidRequest(f"the question is {len(turns[last].content):,} characters; the "
                             f"limit is {max_chars:,} (RAG_MAX_QUESTION_CHARS)")
    return turns[:last + 1]


@dataclass
class Reply:
    """A reply in the making: its pieces, and what they cite (known once they are read)."""

    pieces: Iterator[str]
    model: str
    citations: Callable[[], list[dict[str, Any]]]
    summary: Callable[[], dict[str, Any]]


def reply_for(chat: Chat, turns: list[Turn], body: ChatRequest, request: Request) -> Reply:
    task = task_reply(turns[-1].content)
    model = chat.model_for(body.model)
    if task is not None:  # the frontend's own prompt: no retrieval, nothing cited
        summary = {"question": turns[-1].content, "search": "", "follow_up": False,
                   "found": False, "generator": "frontend-task", "dropped_citations": []}
        return Reply(iter([task]), model, list, lambda: summary)
    options = body.rag or RagOptions()
    filters = options.filters.to_domain() if options.filters else None
    turnout = chat.prepare(turns, body.model, k=options.k, filters=filters, mode=options.mode,
                           deadline=deadline_of(request))
    pieces = chat.stream(turns, turnout)  # an unreachable LLM fails here, as a 502
    return Reply(pieces, turnout.model, turnout.citations, turnout.summary)


def sse(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def event_stream(reply: Reply, head: dict, sources: str,
                 usage: Callable[[str], dict[str, int]] | None) -> Iterator[str]:
    """The SSE stream: a role chunk, Open WebUI's source events (``sources`` = events), the
    content, a stop chunk, then one chunk with empty ``choices`` that carries the citations
    (and ``usage`` when the client asked for it), then ``[DONE]``."""
    def chunk(delta: dict | None, finish: str | None = None, **extra: Any) -> dict:
        choices = [] if delta is None else [{"index": 0, "delta": delta,
                                             "finish_reason": finish, "logprobs": None}]
        return {**head, "object": "chat.completion.chunk", "choices": choices, **extra}

    yield sse(chunk({"role": "assistant", "content": ""}))
    text = ""
    try:
        if sources == "events":  # before the answer text: Open WebUI lists them as sources
            for event in source_events(reply.citations()):
                yield sse(chunk(None, **event))
        for piece in reply.pieces:
            text += piece
            yield sse(chunk({"content": piece}))
    except RagError as exc:  # the generation server failed mid-answer: the response has
        # started (200), so the error travels as OpenAI sends one in a stream: an event with
        # the error shape (the openai client raises it), then the end of the stream
        yield sse({"error": {"code": exc.code, "message": str(exc)}})
        yield sse("[DONE]")
        return
    if sources == "markdown":
        listed = markdown_sources(reply.citations())
        text += listed
        if listed:
            yield sse(chunk({"content": listed}))
    yield sse(chunk({}, "stop"))
    last = chunk(None, citations=reply.citations(), rag=reply.summary())
    if usage is not None:  # OpenAI's stream_options.include_usage: on the last chunk
        last["usage"] = usage(text)
    yield sse(last)
    yield sse("[DONE]")


async def get_chat(request: Request) -> Chat:
    return request.app.state.service.chat


ChatDep = Annotated[Chat, Depends(get_chat)]


def chat_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["openai-compatible"], dependencies=Reader)

    @router.get("/models", response_model=ModelList)
    def models(chat: ChatDep) -> dict:
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                            "owned_by": "rag"} for m in chat.models()]}

    @router.post("/chat/completions", response_model=ChatCompletion,
                 responses={200: {"content": {"text/event-stream": {}},
                                  "description": "JSON, or server-sent events with stream"},
                            502: {"model": ErrorResponse,
                                  "description": "The generation server failed"}})
    def completions(body: ChatRequest, chat: ChatDep, request: Request):
        """The last user message is the question (earlier turns resolve follow-ups)."""
        settings = request.app.state.settings
        turns = turns_of(body, settings.max_question_chars)
        sources = (body.rag.sources if body.rag and body.rag.sources else
                   settings.chat_sources)
        reply = reply_for(chat, turns, body, request)
        count = request.app.state.service.embedder.count_tokens
        prompt_tokens = sum(count([t.content for t in turns]))

        def usage(text: str) -> dict[str, int]:
            completion = sum(count([text])) if text else 0
            return {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                    "total_tokens": prompt_tokens + completion}

        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": reply.model}
        if body.stream:
            wants_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(event_stream(reply, head, sources,
                                                  usage if wants_usage else None),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        content = "".join(reply.pieces)  # a failing LLM raises LlmUnavailable: 502
        citations = reply.citations()
        if sources == "markdown":
            content += markdown_sources(citations)
        return {**head, "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": content}}],
                "citations": citations, "rag": reply.summary(), "usage": usage(content),
                **({"sources": [source_item(c) for c in citations]}
                   if sources == "events" else {})}

    return router
