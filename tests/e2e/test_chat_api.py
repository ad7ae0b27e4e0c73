"""The OpenAI-compatible endpoint against real servers, with the official `openai` client.

One server per backend answers extractively over the seed article plus 25 dev articles; another
has RAG_LLM_BASE_URL pointing at a stand-in generation server (tests/fake_llm.py, real uvicorn).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from conftest import (
    BACKENDS,
    DEV,
    SEED_URL,
    fake_llm,
    serving,
    serving_copy,
)

ATACMS = "What range do the ATACMS missiles have?"
MOZILLA = "Why is Mozilla betting on a decentralized social networking future?"


def dev_articles(n: int = 25) -> list[dict]:
    return json.loads((DEV / "corpus.json").read_text())[:n]


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, news_index, tmp_path_factory) -> Iterator[str]:
    """The extractive chat on each backend (the index copied into Milvus Lite for milvus)."""
    with serving_copy(request.param, news_index, tmp_path_factory, "chat") as (base, _):
        yield base


@functools.cache
def client(base: str) -> openai.OpenAI:
    """One client (one connection pool) per server, as an application would keep it."""
    return openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)


def extra(obj) -> dict:
    return obj.model_extra or {}


def test_models_are_listed(server):
    assert [m.id for m in client(server).models.list()] == ["rag-extractive"]


def test_non_streaming_answer_is_cited_and_citations_are_structured(server):
    reply = client(server).chat.completions.create(
        model="rag-extractive", messages=[{"role": "user", "content": ATACMS}])
    content = reply.choices[0].message.content
    assert "190 miles" in content and reply.model == "rag-extractive"
    citations = extra(reply)["citations"]
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1))
    for c in citations:  # every passage is an exact, checkable span of its article
        if c["cited"]:
            assert c["url"] == SEED_URL and "Michael Birnbaum" in c["author"]
            assert c["published_date"] == "2024-11-26"
        body = httpx.get(f"{server}/documents/{c['document_id']}").json()["body"]
        assert body[c["char_start"]:c["char_end"]] == c["text"]
        h = c["highlight"]
        assert body[h["char_start"]:h["char_end"]] == h["text"]
    markers = {int(x) for x in re.findall(r"\[(\d+)\]", content)}
    assert markers
    sentence = re.sub(r"\s*(\[\d+\])+", "", content).strip()
    for n in markers:  # each marker names a passage that holds the cited sentence verbatim
        cited = next(c for c in citations if c["n"] == n)
        assert cited["cited"] and sentence in cited["text"]


def test_streaming_gives_the_same_answer_and_citations_before_done(server):
    c = client(server)
    messages = [{"role": "user", "content": ATACMS}]
    whole = c.chat.completions.create(model="rag-extractive", messages=messages)
    chunks = list(c.chat.completions.create(model="rag-extractive", messages=messages,
                                            stream=True))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [ch for ch in chunks if "citations" in extra(ch)]
    assert len(finals) == 1 and finals[0] is chunks[-1] and not chunks[-1].choices
    assert extra(finals[0])["citations"] == extra(whole)["citations"]
    assert any(ch.choices and ch.choices[0].finish_reason == "stop" for ch in chunks)
    raw = httpx.post(f"{server}/v1/chat/completions", timeout=120,
                     json={"messages": messages, "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_a_follow_up_uses_the_earlier_turn(server):
    c = client(server)
    mozilla = next(a for a in dev_articles() if "Mozilla" in a["title"])
    first = c.chat.completions.create(model="rag", messages=[
        {"role": "user", "content": MOZILLA}])
    assert extra(first)["citations"][0]["url"] == mozilla["url"]
    follow = c.chat.completions.create(model="rag", messages=[
        {"role": "user", "content": MOZILLA},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And who wrote that?"}])
    top = extra(follow)["citations"][0]
    assert top["url"] == mozilla["url"] and extra(follow)["rag"]["follow_up"]
    assert mozilla["author"] in follow.choices[0].message.content
    # without the conversation the same words find nothing to cite from that article
    alone = c.chat.completions.create(model="rag", messages=[
        {"role": "user", "content": "And who wrote that?"}])
    assert not any(x["url"] == mozilla["url"] and x["cited"]
                   for x in extra(alone)["citations"])


def test_unanswerable_question_says_so_and_lists_the_closest_passages(server):
    for stream in (False, True):
        r = httpx.post(f"{server}/v1/chat/completions", timeout=120, json={
            "stream": stream, "messages": [
                {"role": "user", "content": "Who won the 1954 Tour de France cycling race?"}]})
        assert r.status_code == 200
        text = r.text if stream else r.json()["choices"][0]["message"]["content"]
        assert "No sentence in the indexed articles answers this directly" in text
        assert "Not found" not in text  # passages were found: the closest are listed
        if not stream:
            citations = r.json()["citations"]
            assert citations and not any(c["cited"] for c in citations)
            assert r.json()["rag"]["found"] is False


def test_filters_travel_in_extra_body(server):
    c = client(server)
    kept = c.chat.completions.create(model="rag", messages=[{"role": "user", "content": ATACMS}],
                                     extra_body={"rag": {"k": 3, "filters": {
                                         "sources": ["washingtonpost.com"]}}})
    assert len(extra(kept)["citations"]) <= 3
    assert {x["url"] for x in extra(kept)["citations"]} == {SEED_URL}
    gone = c.chat.completions.create(model="rag", messages=[{"role": "user", "content": ATACMS}],
                                     extra_body={"rag": {"filters": {
                                         "published_before": "2020-01-01"}}})
    assert "Not found" in gone.choices[0].message.content


@pytest.mark.parametrize("body", [
    {"messages": []},
    {"messages": [{"role": "assistant", "content": "hello"}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
    {"messages": [{"role": "user", "content": "   "}]},
    {"messages": [{"role": "user", "content": "x" * 3000}]},
    {"messages": [{"role": "wizard", "content": "hi"}]},
    {"messages": [{"role": "user", "content": ATACMS}], "rag": {"k": 0}},
    {"messages": [{"role": "user", "content": ATACMS}], "stream": "yes"},
    {"messages": "hello"},
])
def test_bad_requests_get_422_with_the_error_shape(server, body):
    r = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"


def test_the_openai_client_sees_a_clean_error(server):
    with pytest.raises(openai.UnprocessableEntityError):
        client(server).chat.completions.create(
            model="rag", messages=[{"role": "assistant", "content": "no question"}])


def test_content_parts_are_read_as_text(server):
    reply = client(server).chat.completions.create(model="rag", messages=[
        {"role": "user", "content": [{"type": "text", "text": ATACMS}]}])
    assert "190 miles" in reply.choices[0].message.content


# --- generation by an OpenAI-compatible server (the stand-in) -------------------------------

@pytest.fixture(scope="module")
def llm_server(news_index, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    import shutil

    work = tmp_path_factory.mktemp("llm")
    index = work / "index"
    shutil.copytree(news_index, index)
    log = work / "fake-llm.jsonl"
    log.touch()
    with fake_llm(log) as llm, serving(index, env={"RAG_LLM_BASE_URL": llm,
                                                   "RAG_LLM_MODEL": "stand-in",
                                                   "RAG_LLM_API_KEY": "llm-secret"}) as base:
        yield base, log


def test_llm_replies_are_grounded_and_invented_citations_dropped(llm_server):
    base, log = llm_server
    c = client(base)
    assert [m.id for m in c.models.list()] == ["rag-extractive", "rag-llm"]
    messages = [{"role": "user", "content": ATACMS}]
    whole = c.chat.completions.create(model="anything", messages=messages)
    text = whole.choices[0].message.content
    assert whole.model == "rag-llm" and "[1]" in text and "[9]" not in text
    assert extra(whole)["rag"]["dropped_citations"] == [9]
    first = extra(whole)["citations"][0]
    assert first["cited"] and first["text"].split(". ")[0][:40] in text  # from passage [1]
    sent = json.loads(log.read_text().splitlines()[-1])
    assert sent["model"] == "stand-in" and sent["stream"] is True
    prompt = sent["messages"][-1]["content"]
    assert ATACMS in prompt and first["text"] in prompt and "[1]" in prompt
    assert "only" in sent["messages"][0]["content"]  # the grounding instruction

    chunks = list(c.chat.completions.create(model="rag-llm", messages=messages, stream=True))
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert streamed == text  # markers split across upstream chunks are judged whole
    assert extra(chunks[-1])["rag"]["dropped_citations"] == [9]
    assert c.chat.completions.create(model="rag-extractive", messages=messages).model == (
        "rag-extractive")


def test_no_support_means_no_llm_call(llm_server):
    base, log = llm_server
    before = len(log.read_text().splitlines())
    r = client(base).chat.completions.create(model="rag-llm", messages=[
        {"role": "user", "content": "Who won the 1954 Tour de France cycling race?"}])
    assert "answers this directly" in r.choices[0].message.content
    assert len(log.read_text().splitlines()) == before


def test_a_failing_llm_is_a_502_not_a_500(llm_server):
    base, _ = llm_server
    for stream in (False, True):
        r = httpx.post(f"{base}/v1/chat/completions", timeout=120, json={
            "model": "rag-llm", "stream": stream,
            "messages": [{"role": "user", "content": "FAIL-UPSTREAM"},  # the stand-in's cue
                         {"role": "assistant", "content": "..."},
                         {"role": "user", "content": ATACMS}]})
        assert r.status_code == 502 and r.json()["error"]["code"] == "llm_unavailable"
        assert "llm-secret" not in r.text
