"""OpenAI-compatible HTTP edge: ``GET /v1/models`` and ``POST /v1/chat/completions``.

The reply text carries ``[n]`` markers; the citations travel in an extra ``citations`` field
(non-streaming) or in a last event before ``data: [DONE]`` (streaming), so they survive the
OpenAI protocol. Errors keep this service's one error shape.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from rag.chat.conversation import Turn
from rag.chat.turn import Chat, Turnout
from rag.core.errors import InvalidRequest, RagError
from rag.server.deadline import deadline_of
from rag.server.deps import Reader
from rag.server.schemas import NOT_ONLY_SPACE, ErrorResponse, JsonInt, QueryFilters


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: StrictStr
    text: StrictStr | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ... are accepted and ignored
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class RagOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: JsonInt = Field(5, ge=1, le=20, description="Passages to retrieve and cite.")
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    filters: QueryFilters | None = None


# at least one user message with text: the question (the last such message)
USER_TEXT: dict[str, Any] = {"type": "object", "required": ["role", "content"], "properties": {
    "role": {"const": "user"}, "content": {"type": "string", "pattern": NOT_ONLY_SPACE}}}


class ChatRequest(BaseModel):
    # OpenAI clients send many optional fields (temperature, max_tokens, user, ...): accepted
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "model": "rag-extractive", "stream": False,
        "messages": [{"role": "user", "content": "What range do the ATACMS missiles have?"}],
        "rag": {"k": 5, "filters": {"sources": ["washingtonpost.com"]}}}]})

    model: StrictStr = Field("rag-extractive", description="A model from GET /v1/models; "
                             "another name gets the default model.")
    messages: list[ChatMessage] = Field(
        min_length=1, max_length=200, json_schema_extra={"contains": USER_TEXT},
        description="The conversation; its last user message with text is the question.")
    stream: StrictBool = False
    rag: RagOptions | None = Field(None, description="Retrieval options (an extension; the "
                                   "openai client sends it with extra_body).")


class Citation(BaseModel):
    n: int
    url: str
    title: str
    author: str | None
    published_date: str | None
    source: str
    document_id: str
    chunk_id: str
    text: str
    char_start: int
    char_end: int
    highlight: dict[str, Any] | None
    cited: bool


class ReplyMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: ReplyMessage
    finish_reason: str
    logprobs: None = None


class RagSummary(BaseModel):
    question: str
    search: str
    follow_up: bool
    found: bool
    generator: Literal["extractive", "llm"]
    dropped_citations: list[int]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    citations: list[Citation]
    rag: RagSummary


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


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


def sse(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def event_stream(pieces: Iterator[str], turnout: Turnout, head: dict) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None) -> dict:
        return {**head, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                             "logprobs": None}]}

    yield sse(chunk({"role": "assistant", "content": ""}, None))
    try:
        for piece in pieces:
            yield sse(chunk({"content": piece}, None))
    except RagError as exc:  # the generation server failed mid-answer: the response has
        # started (200), so the error travels as OpenAI sends one in a stream: an event with
        # the error shape (the openai client raises it), then the end of the stream
        yield sse({"error": {"code": exc.code, "message": str(exc)}})
        yield sse("[DONE]")
        return
    yield sse(chunk({}, "stop"))
    yield sse({**head, "object": "chat.completion.chunk", "choices": [],
               "citations": turnout.citations(), "rag": turnout.summary()})
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
        turns = turns_of(body, request.app.state.settings.max_question_chars)
        options = body.rag or RagOptions()
        filters = options.filters.to_domain() if options.filters else None
        turnout = chat.prepare(turns, body.model, k=options.k, filters=filters,
                               mode=options.mode,
                               deadline=deadline_of(request))
        pieces = chat.stream(turns, turnout)  # an unreachable LLM fails here, as a 502
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": turnout.model}
        if body.stream:
            return StreamingResponse(event_stream(pieces, turnout, head),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        content = "".join(pieces)  # a failing LLM raises LlmUnavailable: 502
        return {**head, "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": content}}],
                "citations": turnout.citations(), "rag": turnout.summary()}

    return router
