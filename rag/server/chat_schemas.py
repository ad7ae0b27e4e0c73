"""The OpenAI-compatible chat API's request and response models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from rag.server.schemas import NOT_ONLY_SPACE, JsonInt, QueryFilters, Text


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: StrictStr
    text: Text | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ... are accepted and ignored
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class RagOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: JsonInt = Field(5, ge=1, le=20, description="Passages to retrieve and cite.")
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    filters: QueryFilters | None = None
    sources: Literal["events", "markdown", "none"] | None = Field(
        None, description="How the reply shows its sources (default RAG_CHAT_SOURCES): "
        "Open WebUI source events, a markdown list, or the `citations` field alone.")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: StrictBool = False


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
    stream_options: StreamOptions | None = None
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
    generator: Literal["extractive", "llm", "frontend-task"]
    dropped_citations: list[int]


class Usage(BaseModel):
    """Tokens by the embedding model's tokenizer (the service's only model)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    citations: list[Citation]
    sources: list[dict[str, Any]] | None = Field(
        None, description="The citations as Open WebUI source items (RAG_CHAT_SOURCES=events).")
    rag: RagSummary
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]
