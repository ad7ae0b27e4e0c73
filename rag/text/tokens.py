"""The one tokenizer of the package: content words and their stems.

BM25 (both index backends) and the extractive answer share it, so that a question's words
are found the same way everywhere: lower-cased words with hyphenated compounds kept whole
("longer-range" is not the noun "range") and possessives attached, less English stopwords;
BM25 stems them with Snowball's English (Porter2) stemmer (PyStemmer).
"""

from __future__ import annotations

import re
from datetime import date

# words, keeping hyphenated compounds whole ("longer-range") and possessives ("kyiv's")
WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*(?:['’][a-z]+)?")
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves
out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where
which while who whom why will with you your yours yourself yourselves would could also said
says according
""".split())  # noqa: SIM905


def terms(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOPWORDS]


class Tokenizer:
    """``terms``, Porter2-stemmed, for BM25: each distinct word is looked up (stopword or
    stem) once per process, then read from a dict."""

    def __init__(self):
        import Stemmer

        self._stem = Stemmer.Stemmer("english")
        self._cache: dict[str, str] = {}  # word -> its stem, "" for a stopword

    def __call__(self, text: str) -> list[str]:
        words = WORD.findall(text.lower())
        cache = self._cache
        try:
            stems = [cache[w] for w in words]
        except KeyError:
            for w in words:
                if w not in cache:
                    cache[w] = "" if w in STOPWORDS else self._stem.stemWord(w)
            stems = [cache[w] for w in words]
        return [s for s in stems if s]


def meta_words(source: str, domain: str, author: str | None, published: str | None) -> str:
    """What a chunk's keyword document holds besides its text and title: the publisher,
    domain and authors, and the publication month in words (``published``: YYYY-MM-DD), so
    that "as reported by TechCrunch in October 2023" matches on them."""
    parts = [source, domain, author or ""]
    if published:
        day = date.fromisoformat(published)
        parts.append(f"{day:%B} {day.year}")
    return " ".join(p for p in parts if p)
