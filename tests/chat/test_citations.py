"""Citation filtering of generated text, whole and streamed in arbitrary pieces."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from rag.chat.citations import CitationFilter, filter_citations


def test_valid_markers_stay_invalid_ones_go():
    text, dropped = filter_citations("Range is 190 miles [1]. Prices doubled [9]. See [2, 7].",
                                     {1, 2, 3})
    assert text == "Range is 190 miles [1]. Prices doubled . See [2]."
    assert dropped == [9, 7]


def test_brackets_that_are_not_markers_pass_through():
    for text in ("an array [a, b]", "[citation needed]", "x[", "[[1]]", "[ 1 ,", "[12345]"):
        out, _ = filter_citations(text, {1})
        assert out.replace("[1]", "") == text.replace("[1]", "")


def test_a_marker_split_across_pieces_is_held_then_judged():
    f = CitationFilter({1})
    shown = [f.feed("miles ["), f.feed("1"), f.feed("] and ["), f.feed("9"), f.feed("]."),
             f.flush()]
    assert shown[0] == "miles " and "".join(shown) == "miles [1] and ."
    assert f.kept == [1] and f.dropped == [9]


def test_an_unfinished_bracket_at_the_end_is_released():
    f = CitationFilter({1})
    assert f.feed("see [1") == "see "
    assert f.flush() == "[1"


ALPHABET = st.sampled_from(list("ab [],0123456789."))


@given(st.text(alphabet=ALPHABET, max_size=60), st.lists(st.integers(0, 60), max_size=8),
       st.sets(st.integers(0, 12), max_size=5))
def test_any_split_gives_the_same_text_as_the_whole(text, cuts, valid):
    whole, dropped = filter_citations(text, valid)
    f = CitationFilter(valid)
    points = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    streamed = "".join(f.feed(text[a:b]) for a, b in pairwise(points)) + f.flush()
    assert streamed == whole and f.dropped == dropped
