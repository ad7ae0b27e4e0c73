"""The searches a question is answered with: the question over the whole index (within the
request's filters), and again within each publisher and each date it names; a named
publisher is also searched with its own clause of the question when that clause says enough.

MultiHop-style questions name their sources ("as reported by TechCrunch") and dates
("published on October 5, 2023"); each mention becomes a filtered ranking, so that every
named source gets its best passages into the fusion.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import NamedTuple

from rag.core.documents import Filters
from rag.retrieval.params import RetrievalParams
from rag.text.hints import (
    around,
    clause_text,
    mentioned_dates,
    mentioned_sources,
    source_clause_spans,
)
from rag.text.tokens import terms

Spans = tuple[tuple[int, int], ...]  # (start, end) pieces of a question
MIN_CLAUSE_TERMS = 4  # a clause with fewer content words is searched as the whole question
# A question that seems to need several articles: MultiHop-RAG's run 20 words and more and
# name their publishers; a one-article question ("What range do the ATACMS missiles have?")
# rarely does either (measured on the two dev sets: 100% and 2.7% of them over 20 words).
MULTI_ARTICLE_WORDS = 20
_COMPARISON = re.compile(r"\b(?:compar\w*|versus|vs\.?|both|between|differ\w*|whereas|"
                         r"respectively|each of)\b", re.IGNORECASE)


class Search(NamedTuple):
    """One ranking to fuse: a query text (the question or a clause of it) within filters."""
    text: str
    filters: Filters
    weight: float
    spans: Spans = ()  # a clause: where its pieces lie in the question


class Mentions(NamedTuple):
    """The publishers (of those in the index) and the dates a question names."""
    sources: list[str]
    dates: list[date]


def mentions(question: str, sources: list[str]) -> Mentions:
    """What ``plan`` and ``multi_article`` read from a question, found once (``sources``: the
    publishers in the index)."""
    return Mentions(mentioned_sources(question, sources), mentioned_dates(question))


def plan(question: str, filters: Filters, named: Mentions,
         p: RetrievalParams) -> list[Search]:
    """The searches whose rankings are fused (``named``: the question's ``mentions``)."""
    plans = [Search(question, filters, 1.0)]
    if p.source_hints and not filters.sources:
        spans = source_clause_spans(question, named.sources) if p.clause_weight else {}
        for source in named.sources:
            f = replace(filters, sources=(source,))
            plans.append(Search(question, f, p.hint_weight))
            clause = clause_text(question, spans.get(source, []))
            if len(terms(clause)) >= MIN_CLAUSE_TERMS and clause != question:
                plans.append(Search(clause, f, p.hint_weight * p.clause_weight,
                                    tuple(spans[source])))
    if p.date_hints:
        for day in named.dates:
            lo, hi = around(day)
            lo = max(lo, filters.published_after or lo)
            hi = min(hi, filters.published_before or hi)
            if lo <= hi:
                plans.append(Search(question, replace(filters, published_after=lo,
                                                      published_before=hi), p.hint_weight))
    return plans


def multi_article(question: str, named: Mentions) -> bool:
    """Whether the question seems to need evidence from several articles: it names a
    publisher or a date, compares, or is as long as multi-hop questions are. Only such
    questions have their results spread over articles (fusion.diversify); a one-article
    question keeps its best passages in their fused order, whichever article they are from."""
    return bool(len(question.split()) >= MULTI_ARTICLE_WORDS or _COMPARISON.search(question)
                or named.sources or named.dates)
