"""Frontends' own task prompts, copied from their sources, get the shape they ask for.

The templates are in tests/frontend_prompts.py, copied from the frontends' sources.
"""

from __future__ import annotations

import json

import pytest
from frontend_prompts import (
    HISTORY,
    LIBRECHAT_TITLE,
    LIBRECHAT_TITLE_OLD,
    OWUI_AUTOCOMPLETE,
    OWUI_FOLLOW_UPS,
    OWUI_QUERIES,
    OWUI_TAGS,
    OWUI_TITLE,
    OWUI_TITLE_OLD,
    QUESTION,
)

from rag.chat.tasks import task_reply


def owui_json(template: str) -> dict:
    """The reply parsed as Open WebUI parses it (middleware: from the first { to the last })."""
    reply = task_reply(template.replace("{history}", HISTORY))
    assert reply is not None
    return json.loads(reply[reply.find("{"):reply.rfind("}") + 1])


@pytest.mark.parametrize("template", [OWUI_TITLE, OWUI_TITLE_OLD])
def test_open_webui_titles_name_the_question(template):
    title = owui_json(template)["title"]
    assert title == "Range ATACMS Missiles"


def test_open_webui_tags_are_a_list_of_words():
    tags = owui_json(OWUI_TAGS)["tags"]
    assert 1 <= len(tags) <= 6 and all(isinstance(t, str) and t for t in tags)
    assert "ATACMS" in tags


def test_open_webui_follow_ups_are_questions_on_the_topic():
    follow_ups = owui_json(OWUI_FOLLOW_UPS)["follow_ups"]
    assert 3 <= len(follow_ups) <= 5 and all(q.endswith("?") for q in follow_ups)
    assert any("ATACMS" in q for q in follow_ups)


def test_open_webui_search_queries_are_the_question():
    assert owui_json(OWUI_QUERIES) == {"queries": [QUESTION]}


def test_open_webui_autocomplete_offers_nothing_rather_than_a_guess():
    assert owui_json(OWUI_AUTOCOMPLETE) == {"text": ""}


@pytest.mark.parametrize("template", [LIBRECHAT_TITLE, LIBRECHAT_TITLE_OLD])
def test_librechat_title_is_plain_text(template):
    assert task_reply(template.replace("{question}", QUESTION)) == "Range ATACMS Missiles"


@pytest.mark.parametrize("question", [
    QUESTION, "Generate a title for the article about Mozilla?",
    "### Task: what did the Task Force report say?"])
def test_questions_are_not_tasks(question):
    assert task_reply(question) is None
