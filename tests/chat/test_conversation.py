"""Reading a conversation: follow-ups searched with their context, metadata questions seen."""

from __future__ import annotations

import pytest

from rag.chat.conversation import Turn, is_follow_up, read

FIRST = "What range do the ATACMS missiles have?"


@pytest.mark.parametrize("question", [
    "And who wrote that?", "who wrote it", "When was it published?", "What about the land mines?",
    "Which outlet ran this story?", "and the date?", "Tell me more about that."])
def test_follow_ups(question):
    assert is_follow_up(question)


@pytest.mark.parametrize("question", [
    FIRST, "Who wrote the TechCrunch article about Mozilla's decentralized social network?",
    "Did the Federal Reserve raise interest rates in November 2023?",
    "What did Sam Bankman-Fried say at his fraud trial about FTX customer deposits?"])
def test_questions_that_stand_alone(question):
    assert not is_follow_up(question)


def test_a_follow_up_is_searched_with_the_earlier_question():
    turns = [Turn("system", "Be brief."), Turn("user", FIRST),
             Turn("assistant", "About 190 miles [1]."), Turn("user", "And who wrote that?")]
    reading = read(turns)
    assert reading.question == "And who wrote that?"
    assert reading.follow_up and reading.search == f"{FIRST} And who wrote that?"
    assert reading.asks == ("author",)


def test_a_new_topic_is_searched_alone_and_a_first_question_is_never_a_follow_up():
    turns = [Turn("user", FIRST), Turn("assistant", "..."),
             Turn("user", "How many troops has North Korea sent to Russia?")]
    assert read(turns).search == "How many troops has North Korea sent to Russia?"
    alone = read([Turn("user", "And who wrote that?")])
    assert not alone.follow_up and alone.search == "And who wrote that?"


@pytest.mark.parametrize(("question", "asks"), [
    ("Who wrote that?", ("author",)), ("when was it published?", ("date",)),
    ("Which newspaper published it, and who is the author?", ("author", "source")),
    (FIRST, ())])
def test_metadata_questions(question, asks):
    assert read([Turn("user", question)]).asks == asks
