"""From a chat conversation to one retrieval question, without an LLM.

The last user message is the question. A follow-up ("and who wrote that?", "when was it
published?") has too little of its own to retrieve by, so it is searched together with the
earlier user turns it refers to. Questions about an article's metadata (its author, date,
publisher) are recognised, so the reply can answer them from the cited article's fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rag.text.tokens import terms

Role = Literal["system", "user", "assistant", "developer", "tool"]

# words that point back at something said before
_ANAPHORA = re.compile(r"\b(that|this|these|those|it|its|they|them|their|he|she|him|her|"
                       r"his|hers|the (?:article|story|report|piece|same))\b", re.I)
_CONTINUATION = re.compile(r"^\s*(and|also|what about|how about|but|so|then)\b", re.I)
# "who wrote that?", "who is the author", "when was it published", "which outlet ran it"
_ASKS = {
    "author": re.compile(r"\b(who\s+(wrote|writes|authored|reported)|author|byline|"
                         r"written\s+by|reporter)\b", re.I),
    "date": re.compile(r"\b(when\s+(was|were|did)\b.*\b(publish|publi[sc]h?ed|written|wrote|"
                       r"released|out|posted)|publication\s+date|what\s+date|date\s+of)", re.I),
    "source": re.compile(r"\b(which|what)\s+(outlet|publication|publisher|site|newspaper|"
                         r"paper|website|source)\b|\bwho\s+published\b", re.I),
}
META_WORDS = frozenset({"wrote", "write", "written", "author", "published", "publish", "date",
                        "outlet", "publication", "publisher", "reported", "report"})
MIN_OWN_TERMS = 3  # a question with fewer content words of its own is read with its context
CONTEXT_TURNS = 2  # earlier user turns a follow-up may draw on


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str


@dataclass(frozen=True)
class Reading:
    """What to search for, and what the user asked about."""

    question: str  # the last user message, as the user wrote it
    search: str  # what retrieval searches: the question, or it with earlier turns
    follow_up: bool
    asks: tuple[str, ...]  # metadata the question asks for: author, date, source


def is_follow_up(question: str) -> bool:
    # content words of its own, beyond pointers back and words about an article's metadata
    substantive = [t for t in terms(question)
                   if t not in META_WORDS and not _ANAPHORA.fullmatch(t)]
    if len(substantive) < MIN_OWN_TERMS and (_ANAPHORA.search(question)
                                             or _CONTINUATION.search(question)
                                             or len(substantive) < 2):
        return True
    return bool(_CONTINUATION.search(question)) and len(substantive) < MIN_OWN_TERMS + 1


def read(turns: list[Turn]) -> Reading:
    """The retrieval reading of a conversation; the caller guarantees a last user turn."""
    users = [t.content.strip() for t in turns if t.role == "user" and t.content.strip()]
    question = users[-1]
    asks = tuple(name for name, pattern in _ASKS.items() if pattern.search(question))
    earlier = users[:-1][-CONTEXT_TURNS:]
    follow_up = bool(earlier) and is_follow_up(question)
    search = " ".join([*earlier, question]) if follow_up else question
    return Reading(question=question, search=search, follow_up=follow_up, asks=asks)
