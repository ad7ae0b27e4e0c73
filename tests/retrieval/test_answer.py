"""Highlights and the cited extractive answer: verbatim, cited, and absent without support."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.core.documents import Passage
from rag.retrieval.answer import best_sentence, compose_answer

TEXT = ("The committee met on Monday. Top aides concluded that the ATACMS missiles, which have "
        "a range of about 190 miles, could help deter North Korea. Lunch was served at noon.")


def passage(rank: int, text: str, start: int = 100) -> Passage:
    return Passage(rank=rank, score=1.0 / rank, text=text, document_id=f"d{rank}",
                   chunk_id=f"d{rank}:0", title="T", url=f"https://x.com/{rank}", author=None,
                   published_date=None, source="x.com", char_start=start,
                   char_end=start + len(text))


def test_highlight_is_the_best_sentence_with_absolute_offsets():
    hl = best_sentence("What is the range of the ATACMS missiles?", TEXT, offset=100)
    assert hl is not None and "190 miles" in hl.text
    assert TEXT[hl.char_start - 100:hl.char_end - 100] == hl.text


def test_answer_sentences_are_verbatim_and_cite_their_passages():
    passages = [passage(1, TEXT), passage(2, "North Korea sent troops to aid Moscow in the war."),
                passage(3, TEXT)]
    answer = compose_answer("What is the range of the ATACMS missiles?", passages)
    assert answer is not None
    for sentence in answer.sentences:
        assert sentence.citations
        for n in sentence.citations:
            assert sentence.text in passages[n - 1].text
    assert "190 miles" in answer.text and "[1][3]" in answer.text


def test_no_support_means_no_answer():
    passages = [passage(1, "Lunch was served at noon. The weather was fine all day long.")]
    assert compose_answer("What is the range of the ATACMS missiles?", passages) is None
    assert compose_answer("What is the range?", []) is None
    assert compose_answer("the of and", passages) is None


@settings(max_examples=200, deadline=None)
@given(question=st.text(max_size=80), texts=st.lists(st.text(min_size=1, max_size=400),
                                                     min_size=1, max_size=5))
def test_any_answer_is_verbatim_and_correctly_cited(question, texts):
    passages = [passage(i + 1, t) for i, t in enumerate(texts)]
    answer = compose_answer(question, passages)
    if answer is not None:
        for sentence in answer.sentences:
            assert sentence.citations
            assert all(sentence.text in passages[n - 1].text for n in sentence.citations)


def _names_reference(question, ignore):
    """names() without its ASCII shortcut: every phrase substituted, case-blind."""
    import re

    from rag.retrieval.answer import _NAME, _NOT_NAMES

    for phrase in ignore:
        question = re.sub(re.escape(phrase), " ", question, flags=re.I)
    return {w.lower() for w in _NAME.findall(question.strip())} - _NOT_NAMES


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["The Verge", "the verge", "BBC", "Ars", "İstanbul Times",
                                 "ſcience", "Kelvin", "K News", "TechCrunch", "a.b"]),
                max_size=5),
       st.lists(st.sampled_from(["Did", "The", "VERGE", "Verge", "the", "BBC", "bbc", "Ars",
                                 "İstanbul", "Times", "Science", "ſcience", "KELVIN",
                                 "Kelvin", "news", "TechCrunch", "report", "a.b", "aXb", ","]),
                min_size=1, max_size=12))
def test_names_skips_only_phrases_that_cannot_match(ignore, words):
    """The shortcut (an ASCII phrase absent from an ASCII question, compared lower-cased) never
    changes the names found, including for non-ASCII case pairs and regex metacharacters."""
    from rag.retrieval.answer import names

    question = " ".join(words) + "?"
    assert names(question, ignore) == _names_reference(question, ignore)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("aAİıß. \n-'’x9Kk!?"), max_size=300)
       | st.text(max_size=200))
def test_passage_sentences_are_split_spans_and_their_content_words(text):
    from rag.retrieval.answer import passage_sentences
    from rag.text.sentences import sentence_spans
    from rag.text.tokens import terms

    expected = tuple((s, e, frozenset(terms(text[s:e]))) for s, e in sentence_spans(text))
    assert passage_sentences(text) == expected


def test_passage_sentences_use_the_spans_the_store_gives():
    from rag.retrieval.answer import passage_sentences
    from rag.text.tokens import terms

    text = "Rates rose sharply. The Fed met in İstanbul on Monday! Nobody came."
    spans = [(0, 19), (20, 55)]  # as if the article's split ended at a different place
    got = passage_sentences(text, spans)
    assert [(s, e) for s, e, _ in got] == spans
    assert got[1][2] == frozenset(terms(text[20:55])) >= {"fed", "met", "monday"}
    assert passage_sentences(text) == got  # cached by text: the store's spans stay
    hl = best_sentence("Who met in Istanbul on Monday?", text, 10, spans)
    assert hl is not None and hl.text == text[20:55] and hl.char_start == 30
