"""Supporting sentences: the highlight of each passage (and, later, the extractive answer)."""

from __future__ import annotations

import math
import re

from rag.chunking import sentence_spans
from rag.documents import Span

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me
more most my myself no nor not now of off on once only or other our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they
this those through to too under until up very was we were what when where which while who whom
why will with you your yours yourself yourselves would could also said says according
""".split())


def terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def best_sentence(question: str, text: str, offset: int = 0) -> Span | None:
    """The sentence of ``text`` sharing the most question terms (longer terms weigh more).

    Offsets are absolute: ``offset`` is where ``text`` starts in the article body.
    """
    wanted = set(terms(question))
    best: tuple[float, int, int] | None = None
    for start, end in sentence_spans(text):
        words = set(terms(text[start:end]))
        score = sum(math.log(1 + len(w)) for w in wanted & words)
        if best is None or score > best[0]:
            best = (score, start, end)
    if best is None:
        return None
    _, start, end = best
    return Span(text=text[start:end], char_start=offset + start, char_end=offset + end)
