"""Plain typed data shared by every layer: no I/O here."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

# Characters that show nothing: white space, control characters and the invisible format
# characters (zero-width spaces and joiners, direction marks, the BOM, variation selectors).
# Written as escapes that read the same in Python, JSON Schema (ECMA) and pydantic (Rust).
SPACE = (r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
         r"\u3000\ufeff")
INVISIBLE = (SPACE + r"\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\xad\u034f\u061c\u115f\u1160"
             r"\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164"
             r"\ufe00-\ufe0f\uffa0\ufff0-\ufffb")
VISIBLE = f"[^{INVISIBLE}]"  # one character that shows
_VISIBLE = re.compile(VISIBLE)


def has_visible_text(text: str) -> bool:
    """Whether ``text`` has a character that shows (found at once in ordinary text)."""
    return _VISIBLE.search(text) is not None


NOT_UNICODE = ("holds an unpaired surrogate (a lone \\uD800-\\uDFFF escape): not valid "
               "Unicode text")


def is_unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode: no lone surrogates (from JSON's ``\\ud800``-style
    escapes, or bytes that were not UTF-8 in a command line), which UTF-8 cannot encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def document_id_for(url: str) -> str:
    """The stable document id: a short hash of the URL (the article's identity)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def domain_of(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # an invalid IPv6 host such as "http://[x"
        return ""
    return host[4:] if host.startswith("www.") else host


def split_authors(author: str | None) -> list[str]:
    """'A, B and C' -> ['A', 'B', 'C']; empty or missing -> []."""
    if not author:
        return []
    parts: list[str] = []
    for piece in author.replace(";", ",").split(","):
        for name in piece.split(" and "):
            name = name.strip()
            if name:
                parts.append(name)
    return parts


@dataclass(frozen=True)
class Article:
    url: str
    title: str
    body: str
    author: str | None = None
    published_date: date | None = None
    published_at: str | None = None  # the original timestamp string, when it had more than a date
    source: str | None = None  # publisher name; falls back to the URL's domain
    summary: str | None = None
    highlights: str | None = None
    category: str | None = None
    origin: str = ""  # file (and record) it came from, for messages

    @property
    def document_id(self) -> str:
        return document_id_for(self.url)

    @property
    def authors(self) -> list[str]:
        return split_authors(self.author)

    @property
    def domain(self) -> str:
        return domain_of(self.url)

    @property
    def source_name(self) -> str:
        return self.source or self.domain

    def content_hash(self) -> str:
        """Hash of everything that is stored; an unchanged hash means nothing to do."""
        h = hashlib.sha256()
        for part in (self.url, self.title, self.body, self.author, self.published_date,
                     self.published_at, self.source, self.summary, self.highlights,
                     self.category):
            h.update(repr(part).encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    char_start: int
    char_end: int
    text: str
    n_tokens: int


@dataclass(frozen=True)
class Span:
    text: str
    char_start: int
    char_end: int


@dataclass
class Passage:
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
    highlight: Span | None = None


@dataclass
class AnswerSentence:
    text: str
    citations: list[int]


@dataclass
class Answer:
    text: str
    sentences: list[AnswerSentence] = field(default_factory=list)


@dataclass
class Result:
    """What a question gets: the passages and, if asked and supported, the cited answer."""

    question: str
    answer: Answer | None
    passages: list[Passage]


MAX_FILTER_CHARS = 200  # one author or source name in a filter (the edges refuse longer)


@dataclass(frozen=True)
class Filters:
    authors: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    published_after: date | None = None
    published_before: date | None = None

    def is_empty(self) -> bool:
        return not (self.authors or self.sources or self.published_after
                    or self.published_before)
