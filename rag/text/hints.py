"""Metadata a question mentions: publishers and dates (pure functions).

MultiHop-style questions name their sources ("as reported by TechCrunch", "the 'FOX News -
Entertainment' article") and dates ("published on October 5, 2023"). The retriever turns each
mention into an extra, filtered ranking, so every named source gets its best passages in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta

MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"], start=1)}
_MONTH = "(" + "|".join(MONTHS) + ")"
_DAY_FIRST = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH},?\s+(\d{{4}})\b", re.I)
_MONTH_FIRST = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def _normal(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def mentioned_sources(question: str, sources: Iterable[str]) -> list[str]:
    """Known source names that occur in the question as whole words, longest first, no
    name that is only part of a longer one found (so 'Fortune' inside nothing else); names of
    one length in alphabetical order, so the searches, and the float sums that fuse them, come
    in the same order in every process (a set's order changes with Python's hash seed)."""
    q = f" {_normal(question)} "
    found: list[str] = []
    for name in sorted(set(sources), key=lambda s: (-len(s), s)):
        n = _normal(name)
        if len(n) < 3 or f" {n} " not in q:
            continue
        if any(f" {n} " in f" {_normal(f)} " for f in found):
            continue
        found.append(name)
    return found


def source_clauses(question: str, sources: list[str]) -> dict[str, str]:
    """For each mentioned source, the part of the question about it: from its mention to the
    next source's mention (the text before the first mention belongs to the first source)."""
    return {name: clause_text(question, spans)
            for name, spans in source_clause_spans(question, sources).items()}


def source_clause_spans(question: str, sources: list[str]) -> dict[str, list[tuple[int, int]]]:
    """Where each mentioned source's clause (``source_clauses``) lies in the question: its
    pieces as (start, end) character offsets, in order."""
    spots: list[tuple[int, str]] = []
    for name in sources:
        pattern = r"(?<!\w)" + r"[\W_]+".join(re.escape(w) for w in _normal(name).split()) \
            + r"(?!\w)"
        for m in re.finditer(pattern, question, re.IGNORECASE):  # offsets of the question
            spots.append((m.start(), name))
    spots.sort()
    spans: dict[str, list[tuple[int, int]]] = {}
    for i, (start, name) in enumerate(spots):
        begin = 0 if i == 0 else start
        end = spots[i + 1][0] if i + 1 < len(spots) else len(question)
        spans.setdefault(name, []).append((begin, end))
    return spans


def clause_text(question: str, spans: Iterable[tuple[int, int]]) -> str:
    """A clause's pieces of the question, joined."""
    text = ""
    for begin, end in spans:
        text = (text + " " + question[begin:end]).strip()
    return text


def mentioned_dates(question: str) -> list[date]:
    out: list[date | None] = []
    for m in _MONTH_FIRST.finditer(question):
        out.append(_safe(int(m.group(3)), MONTHS[m.group(1).lower()], int(m.group(2))))
    for m in _DAY_FIRST.finditer(question):
        out.append(_safe(int(m.group(3)), MONTHS[m.group(2).lower()], int(m.group(1))))
    for m in _ISO.finditer(question):
        out.append(_safe(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    return list(dict.fromkeys(d for d in out if d is not None))


def _safe(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def around(day: date, days: int = 1) -> tuple[date, date]:
    """A window around a mentioned date: publication times are UTC, questions are not.
    Clipped to the calendar's ends (a question may name 9999-12-31)."""
    span = timedelta(days=days)
    lo = day - span if day - date.min >= span else date.min
    hi = day + span if date.max - day >= span else date.max
    return lo, hi
