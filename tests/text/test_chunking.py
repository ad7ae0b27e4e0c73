"""Property tests: offsets slice back to the text, chunks cover the body, budgets hold."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.text.chunking import chunk_text, whitespace_counter
from rag.text.sentences import _sentence_offsets, sentence_spans

WORDS = st.sampled_from(["The", "missile", "range", "U.S.", "Dr.", "190", "miles", "Kyiv’s",
                         "—", "e.g.", "état", "naïve", "😀", "https://example.com/a?b=c",
                         "x" * 300, "(quoted)", "\"Hi.\"", "3.5%", "end.", "Why?", "No!"])
SEPARATORS = st.sampled_from([" ", " ", " ", "\n", "\n\n", "  ", "\t", ". ", "? ", "\u00a0"])
PROSE = st.lists(st.tuples(WORDS, SEPARATORS), max_size=200).map(
    lambda pairs: "".join(w + s for w, s in pairs))
ANY_TEXT = st.text(max_size=2000)
BODIES = st.one_of(PROSE, ANY_TEXT)


def check_invariants(body: str, chunks, count, budget: int) -> None:
    covered = [False] * len(body)
    for i, c in enumerate(chunks):
        assert c.ordinal == i
        assert body[c.char_start:c.char_end] == c.text
        assert c.text and not c.text[0].isspace() and not c.text[-1].isspace()
        assert c.n_tokens == count([c.text])[0] <= budget
        for j in range(c.char_start, c.char_end):
            covered[j] = True
    for j, ch in enumerate(body):
        assert covered[j] or ch.isspace(), f"character {j} ({ch!r}) is in no chunk"
    starts = [c.char_start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


@settings(max_examples=300, deadline=None)
@given(body=BODIES, budget=st.integers(4, 80), overlap_share=st.floats(0, 0.9))
def test_invariants_with_a_word_counter(body, budget, overlap_share):
    overlap = int(budget * overlap_share)
    chunks = chunk_text(body, whitespace_counter, budget, overlap)
    check_invariants(body, chunks, whitespace_counter, budget)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES, budget=st.integers(8, 120))
def test_invariants_with_the_model_tokenizer(real_embedder, body, budget):
    count = real_embedder.count_tokens
    chunks = chunk_text(body, count, budget, budget // 5)
    check_invariants(body, chunks, count, budget)


def test_sentences_stay_whole_when_they_fit():
    body = "First sentence here. Second one is here too. Third closes it."
    chunks = chunk_text(body, whitespace_counter, budget=8, overlap=0)
    assert [c.text for c in chunks] == ["First sentence here.", "Second one is here too.",
                                        "Third closes it."]


def test_overlap_repeats_the_last_sentences():
    body = " ".join(f"Sentence number {i} ends." for i in range(10))
    chunks = chunk_text(body, whitespace_counter, budget=15, overlap=5)
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.char_start < a.char_end  # the next chunk starts inside the previous one
        assert re.match(r"Sentence number \d ends\.", b.text)


def test_long_sentence_is_split_within_budget(real_embedder):
    body = "word " * 700 + "end."
    chunks = chunk_text(body, real_embedder.count_tokens, budget=100, overlap=10)
    assert len(chunks) >= 7
    assert all(c.n_tokens <= 100 for c in chunks)


def test_a_paragraph_break_after_an_initialism_does_not_end_a_lower_case_sentence():
    """Scraped articles break paragraphs inside sentences after "U.S." (the seed article has
    8 such breaks); the sentence goes on in lower case, and only that case is joined."""
    def pieces(body):
        return [body[a:b] for a, b in sentence_spans(body)]

    body = "Kurt Volker, who served as the U.S.\n\nambassador to NATO, spoke. He left."
    assert pieces(body) == ["Kurt Volker, who served as the U.S.\n\nambassador to NATO, spoke.",
                            "He left."]
    assert pieces("Aid from the U.S. and the U.K.\n\nand others.") == [
        "Aid from the U.S. and the U.K.\n\nand others."]
    for split in ("It plays in the U.S.\n\nThe tour starts.", "He wrote on X.\n\niPhone sales.",
                  "President George W.\n\nBush spoke.", "The end.\n\nand then.",
                  "Made in the USA.\n\nmore"):
        assert len(pieces(split)) == 2, split


def test_joining_sentences_stays_linear_in_the_text():
    """Joined spans grow; reading all of one for each join was quadratic (120 kB of the text
    below took 108 s). Four times the text takes 4-5 times as long (best of 3 each; under
    10 here; a quadratic split takes ~16 times)."""
    import time

    def best(text):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            assert len(sentence_spans(text)) == 1
            times.append(time.perf_counter() - start)
        return min(times)

    assert best("A.\n\na " * 40000) < 10 * best("A.\n\na " * 10000)


def test_whitespace_only_body_has_no_chunks():
    assert chunk_text(" \n\t ", whitespace_counter, budget=10) == []
    assert sentence_spans("") == []


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        chunk_text("text", whitespace_counter, budget=0)
    with pytest.raises(ValueError):
        chunk_text("text", whitespace_counter, budget=5, overlap=5)


def blingfire_own(text: str):
    import blingfire

    try:
        return blingfire.text_to_sentences_and_offsets(text)[1]
    except Exception:  # its wrapper asserts on offsets it cannot map
        return None


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(BODIES, st.text(min_size=1, max_size=300)))
def test_fast_sentence_offsets_are_blingfires(text):
    """The numpy byte-to-character mapping gives blingfire's own offsets, or defers to it."""
    fast = _sentence_offsets(text)
    if fast is not None:
        assert fast == blingfire_own(text)


def test_fast_sentence_offsets_on_the_dev_articles():
    import json

    from conftest import DEV

    bodies = [r["body"] for r in json.loads((DEV / "corpus.json").read_text())]
    fast = [_sentence_offsets(b) for b in bodies]
    assert sum(f is None for f in fast) == 0  # the fast path serves real articles
    assert fast == [blingfire_own(b) for b in bodies]


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(BODIES, st.text(alphabet=" \n\t\r.ab\u00a0", max_size=80)),
       cut=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_trimmed_pieces_are_those_of_the_slice(text, cut):
    """Searching the span in place (no copy) finds what searching a copy of it finds."""
    from rag.text.sentences import _trimmed

    start, end = sorted(int(c * len(text)) for c in cut)
    piece = re.compile(r"\S(?:.*?\S)?(?=\s*\n\s*\n|\s*$)", re.S)
    assert _trimmed(text, start, end) == [(start + m.start(), start + m.end())
                                          for m in piece.finditer(text[start:end])]
