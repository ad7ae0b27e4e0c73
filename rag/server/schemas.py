"""HTTP request and response models: the contract of DESIGN §6, with examples."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from rag.core.documents import MAX_FILTER_CHARS, NOT_UNICODE, VISIBLE, Filters, is_unicode


def _integral(value: Any) -> Any:
    """JSON Schema counts 11.0 as an integer; strings and booleans stay rejected."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    """Dates as YYYY-MM-DD text only: pydantic would also read numbers (and numeric strings,
    as in a query string) as seconds since 1970."""
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("expected a date as YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
_WHOLE = re.compile(r"[+-]?\d+")


def _whole_text(value: Any) -> Any:
    """A query string's integer as digits only: pydantic would also read "0.0" as 0, which
    the schema's integer (in a query string: its digits) does not admit."""
    if isinstance(value, str) and not _WHOLE.fullmatch(value):
        raise ValueError("expected a whole number")
    return value


# after Query(...) in a parameter's Annotated (before it, FastAPI loses the bounds' schema)
WHOLE = BeforeValidator(_whole_text)


# A question must have a character that shows: the same definition in JSON Schema (ECMA
# regex), pydantic (Rust regex) and Python.
NOT_ONLY_SPACE = VISIBLE


def _unicode(value: str) -> str:
    if not is_unicode(value):  # the tokenizer, SQLite and every response would fail on it
        raise ValueError(NOT_UNICODE)
    return value


Text = Annotated[StrictStr, AfterValidator(_unicode)]  # a JSON string that is valid Unicode
FilterName = Annotated[Text, Field(max_length=MAX_FILTER_CHARS)]


class QueryFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authors: list[FilterName] = Field(default_factory=list, max_length=100,
                                      description="Keep articles with any of these authors.")
    sources: list[FilterName] = Field(default_factory=list, max_length=100,
                                      description="Publisher names or URL domains.")
    published_after: IsoDate | None = Field(None, description="Inclusive, YYYY-MM-DD.")
    published_before: IsoDate | None = Field(None, description="Inclusive, YYYY-MM-DD.")

    @model_validator(mode="after")
    def _ordered(self) -> QueryFilters:
        if (self.published_after and self.published_before
                and self.published_after > self.published_before):
            raise ValueError("published_after is later than published_before")
        return self

    def to_domain(self) -> Filters:
        return Filters(authors=tuple(self.authors), sources=tuple(self.sources),
                       published_after=self.published_after,
                       published_before=self.published_before)


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "question": "What range do the ATACMS missiles have?", "k": 5, "mode": "hybrid",
        "filters": {"authors": ["Michael Birnbaum"], "sources": ["washingtonpost.com"],
                    "published_after": "2024-11-01", "published_before": "2024-12-31"},
        "answer": True}]})

    question: StrictStr = Field(
        min_length=1, pattern=NOT_ONLY_SPACE, description="A natural-language question (with "
        "visible text; the length limit is RAG_MAX_QUESTION_CHARS, shown as maxLength).")
    k: JsonInt = Field(5, ge=1, le=50, description="How many passages to return.")
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    filters: QueryFilters | None = None
    answer: StrictBool = Field(True, description="Compose a cited extractive answer.")


class Highlight(BaseModel):
    text: str
    char_start: int
    char_end: int


class PassageOut(BaseModel):
    rank: int
    score: float
    text: str
    document_id: str
    chunk_id: str
    title: str
    url: str
    author: str | None
    published_date: str | None
    source: str
    char_start: int
    char_end: int
    highlight: Highlight | None


class AnswerSentenceOut(BaseModel):
    text: str
    citations: list[int]


class AnswerOut(BaseModel):
    text: str
    sentences: list[AnswerSentenceOut]


class QueryResponse(BaseModel):
    question: str
    answer: AnswerOut | None
    passages: list[PassageOut]
    took_ms: float


class DocumentOut(BaseModel):
    document_id: str
    url: str
    title: str
    author: str | None
    authors: list[str]
    published_date: str | None
    published_at: str | None
    source: str
    domain: str
    summary: str | None
    highlights: str | None
    category: str | None
    body: str
    content_hash: str
    ingested_at: str
    chunks: int


class DocumentSummary(BaseModel):
    document_id: str
    url: str
    title: str
    author: str | None
    published_date: str | None
    source: str


class DocumentPage(BaseModel):
    total: int
    limit: int
    offset: int
    documents: list[DocumentSummary]


class ItemResult(BaseModel):
    index: int
    status: Literal["added", "updated", "unchanged", "rejected"]
    url: str | None = None
    document_id: str | None = None
    reason: str | None = None


class AddResponse(BaseModel):
    added: int
    updated: int
    unchanged: int
    rejected: int
    items: list[ItemResult]


class DeleteResponse(BaseModel):
    deleted: str
    url: str


class Health(BaseModel):
    status: Literal["ok"]
    ready: bool
    documents: int


class Stats(BaseModel):
    index_dir: str
    generation: int
    format_version: int
    model: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int
    documents: int
    chunks: int
    embeddings: int


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in ((401, "API key required"), (403, "API key not accepted"),
                         (404, "Not found"), (409, "Index mismatch"), (413, "Body too large"),
                         (422, "Invalid request"), (503, "Index unavailable"),
                         (504, "Request timed out"))
}
