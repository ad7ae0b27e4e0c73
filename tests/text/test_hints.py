"""Publisher and date mentions in questions."""

from __future__ import annotations

from datetime import date

from rag.text.hints import (
    around,
    clause_text,
    mentioned_dates,
    mentioned_sources,
    source_clause_spans,
    source_clauses,
)

SOURCES = ["The Verge", "TechCrunch", "FOX News - Entertainment", "Fortune", "The Age",
           "The Independent - Life and Style", "Sporting News", "CBSSports.com"]


def test_sources_are_found_as_whole_words_with_punctuation_variants():
    q = ("Does the article from 'The Independent - Life and Style' agree with FOX News — "
         "Entertainment and cbssports.com, unlike the Vergeish blog or the stage?")
    assert mentioned_sources(q, SOURCES) == ["The Independent - Life and Style",
                                             "FOX News - Entertainment", "CBSSports.com"]


def test_no_sources():
    assert mentioned_sources("What is the range of the ATACMS missiles?", SOURCES) == []


def test_clauses_split_at_each_mention():
    q = ("Does the Sporting News article suggest that Hill may not reach 2,000 yards, while "
         "the CBSSports.com article claims he needs 153 yards per game?")
    clauses = source_clauses(q, ["Sporting News", "CBSSports.com"])
    assert clauses["Sporting News"].startswith("Does the Sporting News article suggest")
    assert clauses["Sporting News"].endswith("while the")
    assert clauses["CBSSports.com"].startswith("CBSSports.com article claims")


def test_clause_spans_are_offsets_of_the_question_itself():
    """A clause's pieces as character offsets (what a pooled clause vector reads), also when
    lower-casing would move them ('İ' lower-cases to two characters) and when a source is
    named twice."""
    q = ("İİ Did Wired report a rise, as the BBC did, and did WIRED later call the BBC's "
         "figures wrong?")
    spans = source_clause_spans(q, ["Wired", "BBC"])
    assert spans == {"Wired": [(0, q.index("BBC did")), (q.index("WIRED"), q.index("BBC's"))],
                     "BBC": [(q.index("BBC did"), q.index("WIRED")), (q.index("BBC's"), len(q))]}
    assert source_clauses(q, ["Wired", "BBC"]) == {
        name: clause_text(q, pieces) for name, pieces in spans.items()}
    assert clause_text(q, spans["BBC"]) == "BBC did, and did BBC's figures wrong?"


def test_dates_in_several_spellings_and_impossible_ones_dropped():
    q = ("published on October 2, 2023, then 28 October 2023, 2023-10-05, "
         "and February 30, 2023")
    assert mentioned_dates(q) == [date(2023, 10, 2), date(2023, 10, 28), date(2023, 10, 5)]
    assert around(date(2023, 10, 2)) == (date(2023, 10, 1), date(2023, 10, 3))


def test_dates_at_the_calendars_ends_give_a_window_not_an_overflow():
    """A question naming 9999-12-31 or 0001-01-01 was a 500 (OverflowError in the plan)."""
    from rag.core.documents import Filters
    from rag.retrieval.params import RetrievalParams
    from rag.retrieval.planner import mentions, plan

    assert around(date.max) == (date(9999, 12, 30), date.max)
    assert around(date.min) == (date.min, date(1, 1, 2))
    for q in ("What happened on 9999-12-31?", "What happened on 0001-01-01?"):
        searches = plan(q, Filters(), mentions(q, SOURCES), RetrievalParams())
        assert len(searches) == 2  # the question, and the question within its date


def test_multi_article_questions_are_long_compare_or_name_a_publisher_or_date():
    from rag.retrieval.planner import MULTI_ARTICLE_WORDS, mentions, multi_article

    def multi(q: str) -> bool:
        return multi_article(q, mentions(q, SOURCES))

    assert not multi("What is the range of the ATACMS missiles?")
    assert not multi("ATACMS range")
    assert multi("How does the ATACMS range compare with the Storm Shadow's?")
    assert multi("What did TechCrunch write about the ATACMS missiles?")
    assert multi("What happened to the ATACMS missiles on October 17, 2023?")
    long = " ".join(["missiles"] * MULTI_ARTICLE_WORDS)
    assert multi(long) and not multi(long.split(" ", 1)[1])
    assert mentions("Did Fortune and The Verge agree on 2023-10-05?", SOURCES) == (
        ["The Verge", "Fortune"], [date(2023, 10, 5)])
