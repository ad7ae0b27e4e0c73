"""One chat turn: read the conversation, retrieve, and reply with ``[n]`` citations.

By default the reply is the cited extractive answer (no LLM). With a generation server
configured, the model writes the reply from the same numbered passages, streamed through a
filter that drops citation numbers referring to no passage. When the index holds no support
for the question, the reply says so and no model is asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol

from rag.chat.citations import CitationFilter
from rag.chat.conversation import Reading, Turn, read
from rag.chat.llm import Llm, grounded_messages
from rag.core.documents import Filters, Passage, Result, split_authors
from rag.retrieval.retriever import Mode

NOT_FOUND = ("Not found in the indexed articles: none of them supports an answer to this "
             "question.")
NO_DIRECT = "No sentence in the indexed articles answers this directly; the closest passages:"
EXTRACTIVE_MODEL = "rag-extractive"
LLM_MODEL = "rag-llm"
_PIECE = re.compile(r"\S+\s*|\s+")


@dataclass
class Turnout:
    """Everything a reply is made from, and what the reply turned out to cite."""

    reading: Reading
    passages: list[Passage]
    found: bool
    model: str
    extractive: str | None = None  # the extractive answer's text, with its markers
    cited: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # generated numbers with no passage

    def citations(self) -> list[dict]:
        """The passages the reply may cite, numbered as in the text (``n`` = rank): with no
        answer, the closest passages it lists."""
        cited = set(self.cited)
        return [{"n": p.rank, "url": p.url, "title": p.title, "author": p.author,
                 "published_date": p.published_date, "source": p.source,
                 "document_id": p.document_id, "chunk_id": p.chunk_id, "text": p.text,
                 "char_start": p.char_start, "char_end": p.char_end,
                 "highlight": asdict(p.highlight) if p.highlight else None,
                 "cited": p.rank in cited} for p in self.passages]

    def summary(self) -> dict:
        return {"question": self.reading.question, "search": self.reading.search,
                "follow_up": self.reading.follow_up, "found": self.found,
                "generator": "llm" if self.model == LLM_MODEL else "extractive",
                "dropped_citations": self.dropped}


def metadata_reply(passage: Passage, asks: tuple[str, ...]) -> str:
    """"Who wrote that?" answered from the top cited article's own fields."""
    facts = []
    if "author" in asks:
        names = split_authors(passage.author)
        facts.append(f"was written by {and_list(names)}" if names else "names no author")
    if "date" in asks:
        facts.append(f"was published on {passage.published_date}" if passage.published_date
                     else "carries no publication date")
    if "source" in asks:
        facts.append(f"was published by {passage.source}")
    return f"The article “{passage.title}” [{passage.rank}] {and_list(facts)}."


def closest(passages: list[Passage], shown: int = 3) -> str:
    """The reply when no sentence answers: say so, and list the closest passages."""
    if not passages:
        return NOT_FOUND
    listed = "; ".join(f"[{p.rank}] “{p.title}” ({p.source}, {p.published_date or 'n.d.'})"
                       for p in passages[:shown])
    return f"{NO_DIRECT} {listed}."


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class Ask(Protocol):
    """The service's question answering (``Service.ask``)."""

    def __call__(self, question: str, k: int = 5, mode: Mode = "hybrid",
                 filters: Filters | None = None, answer: bool = True,
                 deadline: float | None = None) -> Result: ...


class Chat:
    def __init__(self, ask: Ask, llm: Llm | None = None):
        self.ask = ask
        self.llm = llm

    def models(self) -> list[str]:
        return [EXTRACTIVE_MODEL, *([LLM_MODEL] if self.llm else [])]

    def model_for(self, requested: str) -> str:
        """The model asked for if we serve it, else the default (an LLM when configured):
        chat clients often send their own default model name."""
        if requested in self.models():
            return requested
        return LLM_MODEL if self.llm else EXTRACTIVE_MODEL

    def prepare(self, turns: list[Turn], requested_model: str, k: int = 5,
                filters: Filters | None = None, mode: Mode = "hybrid",
                deadline: float | None = None) -> Turnout:
        reading = read(turns)
        result = self.ask(reading.search, k=k, mode=mode, filters=filters, deadline=deadline)
        found = result.answer is not None
        turnout = Turnout(reading, result.passages, found, self.model_for(requested_model))
        if found and result.answer:
            turnout.extractive = (metadata_reply(result.passages[0], reading.asks)
                                  if reading.asks else result.answer.text)
        return turnout

    def stream(self, turns: list[Turn], turnout: Turnout) -> Iterator[str]:
        """The reply in pieces. For the LLM, the request is made before this returns, so a
        server that cannot be reached fails here (as LlmUnavailable), not mid-stream."""
        if not turnout.found:
            return iter([closest(turnout.passages)])
        if turnout.model == LLM_MODEL and self.llm is not None:
            messages = grounded_messages(turns, turnout.reading.question, turnout.passages)
            return self._filtered(self.llm.stream(messages), turnout)
        text = turnout.extractive or NOT_FOUND
        turnout.cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)})
        return iter(_PIECE.findall(text))

    @staticmethod
    def _filtered(pieces: Iterator[str], turnout: Turnout) -> Iterator[str]:
        check = CitationFilter({p.rank for p in turnout.passages})
        for piece in pieces:
            shown = check.feed(piece)
            if shown:
                yield shown
        rest = check.flush()
        if rest:
            yield rest
        turnout.cited = sorted(set(check.kept))
        turnout.dropped = check.dropped
