"""What chat frontends see, against a real server over the seed index.

Open WebUI's stream handler (backend/open_webui/utils/middleware.py) reads ``data:`` lines,
forwards every JSON object with an ``event`` key to its UI, and for the rest reads
``choices[0].delta.content``; it is reproduced here line for line. The official ``openai``
client parses every chunk, streamed or not.
"""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest
from frontend_prompts import OWUI_FOLLOW_UPS, OWUI_TAGS, OWUI_TITLE

ATACMS = "What range do the ATACMS missiles have?"
HISTORY = f"USER: {ATACMS}\nASSISTANT: The missiles can reach 190 miles [1]."


def open_webui_pass_through(lines: list[str]) -> tuple[list[dict], str]:
    """The events Open WebUI's UI receives, in order, and the content it shows."""
    emitted: list[dict] = []
    content = ""
    for line in lines:
        if not line.strip() or not line.startswith("data:"):
            continue
        data = line[len("data:"):].strip()
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            continue  # "[DONE]"
        if "event" in data:
            emitted.append(data["event"])
        choices = data.get("choices", [])
        if not choices:
            continue
        delta = choices[0].get("delta", {})
        if delta.get("content"):
            content += delta["content"]
            emitted.append({"type": "content", "data": delta["content"]})
    return emitted, content


def stream_lines(base: str, body: dict) -> list[str]:
    with httpx.stream("POST", f"{base}/v1/chat/completions", timeout=120,
                      json={**body, "stream": True}) as r:
        assert r.status_code == 200
        return list(r.iter_lines())


def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_open_webui_shows_one_source_per_citation_in_order_before_the_text(seed_server):
    lines = stream_lines(seed_server, {"messages": [{"role": "user", "content": ATACMS}]})
    emitted, content = open_webui_pass_through(lines)
    last = json.loads(next(x for x in reversed(lines) if x.startswith("data: {"))[6:])
    citations = last["citations"]
    sources = [e["data"] for e in emitted if e["type"] == "source"]
    assert citations and len(sources) == len(citations)
    # its UI lists them in arrival order and [n] opens the n-th: the same order as the numbers
    assert [s["metadata"][0]["url"].split("#")[0] for s in sources] == [
        c["url"] for c in citations]
    assert [s["document"] for s in sources] == [[c["text"]] for c in citations]
    assert [e["type"] for e in emitted[:len(sources)]] == ["source"] * len(sources)
    assert "190 miles" in content
    for n in map(int, re.findall(r"\[(\d+)\]", content)):
        meta = sources[n - 1]["metadata"][0]
        assert citations[n - 1]["cited"] and meta["cited"]
        # the link scrolls to the supporting sentence (a text fragment)
        assert meta["url"].startswith(citations[n - 1]["url"] + "#:~:text=")


def test_a_non_streamed_reply_carries_the_same_sources(seed_server):
    reply = httpx.post(f"{seed_server}/v1/chat/completions", timeout=120,
                       json={"messages": [{"role": "user", "content": ATACMS}]}).json()
    assert [s["metadata"][0]["chunk_id"] for s in reply["sources"]] == [
        c["chunk_id"] for c in reply["citations"]]


def test_markdown_sources_replace_events_per_request(seed_server):
    body = {"messages": [{"role": "user", "content": ATACMS}],
            "rag": {"sources": "markdown"}}
    emitted, content = open_webui_pass_through(stream_lines(seed_server, body))
    assert not [e for e in emitted if e["type"] == "source"]
    whole = httpx.post(f"{seed_server}/v1/chat/completions", timeout=120, json=body).json()
    text = whole["choices"][0]["message"]["content"]
    assert text == content and whole["sources"] is None
    listed = text.split("\nSources:\n", 1)[1].splitlines()
    assert listed == [f"[{c['n']}] {c['title']} - {c['author']}, {c['published_date']} - "
                      f"{c['url']}" for c in whole["citations"]]
    none = httpx.post(f"{seed_server}/v1/chat/completions", timeout=120, json={
        **body, "rag": {"sources": "none"}}).json()
    assert "Sources:" not in none["choices"][0]["message"]["content"]
    assert none["sources"] is None


def test_the_openai_client_gets_the_cited_answer_and_usage_both_ways(seed_server):
    c = client(seed_server)
    messages = [{"role": "user", "content": ATACMS}]
    whole = c.chat.completions.create(model="rag", messages=messages)
    chunks = list(c.chat.completions.create(
        model="rag", messages=messages, stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == whole.choices[0].message.content and "190 miles" in text
    assert [ch.usage is not None for ch in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].usage == whole.usage
    u = whole.usage
    assert u.prompt_tokens > 5 and u.completion_tokens > 10
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    # a longer conversation is a longer prompt; a stream without the option has no usage
    longer = c.chat.completions.create(model="rag", messages=[
        *messages, {"role": "assistant", "content": text},
        {"role": "user", "content": "Who wrote that?"}])
    assert longer.usage.prompt_tokens > u.prompt_tokens
    plain = list(c.chat.completions.create(model="rag", messages=messages, stream=True))
    assert all(ch.usage is None for ch in plain)


@pytest.mark.parametrize(("template", "key"), [
    (OWUI_TITLE, "title"), (OWUI_TAGS, "tags"), (OWUI_FOLLOW_UPS, "follow_ups")])
def test_open_webui_task_prompts_get_their_json_not_a_retrieval(seed_server, template, key):
    # as Open WebUI sends them: one user message, not streamed
    reply = client(seed_server).chat.completions.create(model="rag", messages=[
        {"role": "user", "content": template.replace("{history}", HISTORY)}])
    text = reply.choices[0].message.content
    assert "Not found" not in text and not (reply.model_extra or {})["citations"]
    value = json.loads(text[text.find("{"):text.rfind("}") + 1])[key]
    assert "ATACMS" in (value if isinstance(value, str) else " ".join(value))
