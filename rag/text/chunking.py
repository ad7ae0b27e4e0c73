"""Article body -> sentence-aligned chunks with exact character offsets (pure functions).

Guarantees, checked by property tests on arbitrary text:
- ``body[c.char_start:c.char_end] == c.text`` for every chunk;
- every non-whitespace character of the body lies in at least one chunk;
- no chunk is longer than ``budget`` tokens as counted by the model's own tokenizer.

Sentences come from rag/text/sentences.py; a sentence longer than the budget is split at word
boundaries, and a single "word" longer than the budget (a URL, a run of symbols) at character
boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.core.documents import Chunk
from rag.text.sentences import Span, sentence_spans

TokenCounter = Callable[[Sequence[str]], list[int]]

_WORD = re.compile(r"\S+")


def _split_long(text: str, span: Span, budget: int, count: TokenCounter) -> list[Span]:
    """Split one over-budget span into pieces of at most ``budget`` tokens."""
    s, e = span
    words = [(s + m.start(), s + m.end()) for m in _WORD.finditer(text[s:e])]
    pieces: list[Span] = []
    for w in words:
        if count([text[w[0]:w[1]]])[0] > budget:
            pieces.extend(_split_chars(text, w, budget, count))
        else:
            pieces.append(w)
    return [span for span, _ in _pack(text, pieces, budget, 0, count, merge_only=True)]


def _split_chars(text: str, span: Span, budget: int, count: TokenCounter) -> list[Span]:
    out: list[Span] = []
    s, e = span
    while s < e:
        lo, hi = s + 1, e  # largest end with count <= budget, by binary search
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count([text[s:mid]])[0] <= budget:
                lo = mid
            else:
                hi = mid - 1
        out.append((s, lo))
        s = lo
    return out


def _pack(
    text: str,
    units: list[Span],
    budget: int,
    overlap: int,
    count: TokenCounter,
    merge_only: bool = False,
    sizes: list[int] | None = None,
) -> list[tuple[Span, int]]:
    """Greedily group consecutive units into spans of at most ``budget`` tokens; each
    span with its exact token count. ``sizes`` are the units' counts, if already known.

    With ``overlap`` > 0 the next group starts at the earliest unit whose tail of the
    previous group fits in ``overlap`` tokens (and always after the previous start).
    """
    if not units:
        return []
    if sizes is None:
        sizes = count([text[a:b] for a, b in units])
    groups: list[tuple[Span, int]] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (j == i or total + sizes[j] <= budget):
            total += sizes[j]
            j += 1
        # the estimate assumes token counts add up across whitespace; check it exactly
        exact = sizes[i]
        while j - i > 1:
            exact = count([text[units[i][0]:units[j - 1][1]]])[0]
            if exact <= budget:
                break
            j -= 1
            exact = sizes[i]
        groups.append(((units[i][0], units[j - 1][1]), exact))
        if j >= len(units):
            break
        nxt, tail = j, 0
        if not merge_only:
            while nxt - 1 > i and tail + sizes[nxt - 1] <= overlap:
                nxt -= 1
                tail += sizes[nxt]
        i = nxt
    return groups


def chunk_text(body: str, count: TokenCounter, budget: int, overlap: int = 0) -> list[Chunk]:
    """Split ``body`` into sentence-aligned chunks of at most ``budget`` tokens."""
    if budget < 1:
        raise ValueError("budget must be at least one token")
    if overlap >= budget:
        raise ValueError("overlap must be smaller than the budget")
    units: list[Span] = []
    unit_sizes: list[int] = []
    spans = sentence_spans(body)
    sizes = count([body[a:b] for a, b in spans]) if spans else []
    for span, size in zip(spans, sizes, strict=True):
        if size <= budget:
            units.append(span)
            unit_sizes.append(size)
        else:
            pieces = _split_long(body, span, budget, count)
            units.extend(pieces)
            unit_sizes.extend(count([body[a:b] for a, b in pieces]))
    groups = _pack(body, units, budget, overlap, count, sizes=unit_sizes)
    return [
        Chunk(ordinal=i, char_start=a, char_end=b, text=body[a:b], n_tokens=n)
        for i, ((a, b), n) in enumerate(groups)
    ]


def whitespace_counter(texts: Sequence[str]) -> list[int]:
    """A crude token counter (words and punctuation marks) for tests and tools."""
    return [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]
