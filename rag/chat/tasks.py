"""Chat frontends' own task prompts, answered without pretending to retrieve.

Open WebUI (and LibreChat) send the chat model their own prompts besides the user's
questions: a title for the chat, tags, follow-up suggestions, search queries, autocomplete.
Retrieving for those would answer them "Not found in the indexed articles", and that would
become the chat's title. They are recognised by their text (the frontends send them as a
plain user message) and answered in the shape each asks for, from the conversation itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from rag.text.tokens import terms

TITLE_WORDS = 4
_HISTORY = re.compile(r"<chat_history>(.*?)</chat_history>", re.S)
_USER_LINE = re.compile(r"^\s*(?:USER|User|Human|user)\s*:\s*(.+)$", re.M)


def _user_lines(prompt: str) -> list[str]:
    """The user turns quoted in a task prompt (its chat history, or LibreChat's
    ``Conversation:`` block)."""
    history = _HISTORY.search(prompt)
    text = history.group(1) if history else prompt.split("Conversation:", 1)[-1]
    return [m.group(1).strip() for m in _USER_LINE.finditer(text) if m.group(1).strip()]


def _key_words(question: str, n: int) -> list[str]:
    """The question's first ``n`` content words, as the question spells them."""
    wanted = terms(question)
    words: list[str] = []
    for raw in re.findall(r"[\w'’-]+", question):
        if raw.lower() in wanted and raw.lower() not in (w.lower() for w in words):
            words.append(raw)
        if len(words) == n:
            break
    return words


def title_of(question: str) -> str:
    words = _key_words(question, TITLE_WORDS)
    return " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in words) or "News Question"


def _topic(question: str) -> str:
    return " ".join(_key_words(question, 3)) or "this"


def _owui_title(users: list[str]) -> str:
    return json.dumps({"title": title_of(users[0] if users else "")})


def _owui_tags(users: list[str]) -> str:
    words = _key_words(users[0], 2) if users else []
    return json.dumps({"tags": ["News", *(w if w.isupper() else w.capitalize() for w in words)]})


def _owui_follow_ups(users: list[str]) -> str:
    topic = _topic(users[-1] if users else "")
    return json.dumps({"follow_ups": [f"Who wrote the article about {topic}?",
                                      "When was it published?",
                                      f"What else do the indexed articles say about {topic}?"]})


def _owui_queries(users: list[str]) -> str:
    return json.dumps({"queries": users[-1:]})


def _librechat_title(users: list[str]) -> str:
    return title_of(users[0] if users else "")


# (what identifies the prompt, the reply) — Open WebUI's current and older templates, and
# LibreChat's title prompts
TASKS: list[tuple[re.Pattern[str], Callable[[list[str]], str]]] = [
    (re.compile(r"###\s*Task:\s*Generate a concise,? .*title", re.I | re.S), _owui_title),
    (re.compile(r"###\s*Task:\s*Generate 1-3 broad tags", re.I), _owui_tags),
    (re.compile(r"###\s*Task:\s*Suggest 3-5 relevant follow-up", re.I), _owui_follow_ups),
    (re.compile(r"###\s*Task:\s*Analyze the chat history to determine the necessity of "
                r"generating search queries", re.I), _owui_queries),
    (re.compile(r"You are an autocompletion system", re.I), lambda users: '{"text": ""}'),
    (re.compile(r"reflect the speaker's likely facial expression", re.I), lambda users: "🙂"),
    (re.compile(r"5[- ]word[- ]or[- ]less title for (this|the) conversation|"
                r"Write a concise title for this conversation", re.I), _librechat_title),
]


def task_reply(message: str) -> str | None:
    """The reply to a frontend's task prompt, or None when ``message`` is not one."""
    for pattern, reply in TASKS:
        if pattern.search(message):
            return reply(_user_lines(message))
    return None
