"""The chat page at `/`, end to end in a real headless Chromium (Debian's `chromium`, driven by
Playwright) against a real server: the empty page, a cited answer with its sources grouped by
article, the reader view that highlights a passage at its offsets, keyboard use. Screenshots
go to test-artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from conftest import ROOT, SEED_URL

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
# as root, in a sandbox with no network: no sandboxing, no background traffic
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def page(seed_server) -> Iterator[tuple[Page, str]]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        try:
            yield tab, seed_server
        finally:
            browser.close()
        assert not errors, errors


def ask(tab: Page, question: str) -> None:
    turns = tab.locator(".assistant.done").count()
    tab.fill("#question", question)
    tab.click("#send")
    expect(tab.locator(".assistant.done")).to_have_count(turns + 1, timeout=60_000)


def test_the_empty_page_shows_the_index_and_example_questions(page):
    tab, _ = page
    tab.goto(page[1] + "/")
    expect(tab.locator("#status")).to_have_text("1 article indexed")
    expect(tab.locator("#size")).to_have_text(
        "The index holds 1 article from 1 source, published 2024-11-26 to 2024-11-26.")
    example = tab.locator("button.example")
    expect(example).to_have_count(1)
    expect(example).to_contain_text("Biden races to boost Ukraine")  # its title
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "chat-page-empty.png"), full_page=True)
    example.click()
    expect(tab.locator(".assistant.done")).to_have_count(1, timeout=60_000)
    expect(tab.locator("#welcome")).to_be_hidden()
    expect(tab.locator(".assistant .citation:not(.uncited)")).not_to_have_count(0)
    tab.click("#clear")
    expect(tab.locator("#welcome")).to_be_visible()


def test_sources_are_grouped_by_article_with_the_supporting_sentence_in_view(page):
    tab, _ = page
    ask(tab, "What range do the ATACMS missiles have?")
    reply = tab.locator(".assistant").last
    expect(reply.locator(".content")).to_contain_text("190 miles")
    expect(reply.locator(".source")).to_have_count(1)  # every passage is of the seed article
    source = reply.locator(".source")
    expect(source.locator(".byline")).to_contain_text("Michael Birnbaum")
    expect(source.locator(".byline")).to_contain_text("2024-11-26")
    title = source.locator("a.title")
    expect(title).to_have_attribute("target", "_blank")
    assert title.get_attribute("href").startswith(SEED_URL + "#:~:text=")
    assert reply.locator(".citation").count() >= 2
    cited = reply.locator(".citation:not(.uncited)").first
    support = cited.locator(".support")
    expect(support).to_be_visible()  # without expanding anything
    assert "190 miles" in support.inner_text()
    passage = cited.locator(".passage")
    expect(passage).to_be_hidden()
    assert support.inner_text() == passage.locator("mark").text_content()
    words = support.inner_text().split()[:8]
    href = cited.locator("a.original").get_attribute("href")
    assert href.startswith(SEED_URL + "#:~:text=")
    assert unquote(href.split("#:~:text=")[1]) == " ".join(words)
    tab.screenshot(path=str(ARTIFACTS / "chat-page.png"), full_page=True)


def test_the_reader_view_highlights_the_passage_at_its_offsets(page):
    tab, base = page
    reply = tab.locator(".assistant").last
    citation = reply.locator(".citation").first
    passage_text = citation.locator(".passage").text_content()
    citation.locator("button.read").click()
    reader = tab.locator("#reader")
    expect(reader).to_be_visible()
    chosen = reader.locator("#reader-chosen")
    expect(chosen).to_be_visible()
    assert chosen.text_content() == passage_text
    body = reader.locator("#reader-body").text_content()
    document = httpx.get(f"{base}/documents?limit=1").json()["documents"][0]
    article = httpx.get(f"{base}/documents/{document['document_id']}").json()["body"]
    assert body == article  # the whole article, marks and all, reads as its text
    before = chosen.evaluate(
        "m => { const r = document.createRange(); r.setStart(m.parentNode, 0);"
        " r.setEndBefore(m); return r.toString().length; }")
    assert article[before:before + len(passage_text)] == passage_text
    support = chosen.locator("strong.support")
    assert support.text_content() == citation.locator(".support").text_content()
    tab.screenshot(path=str(ARTIFACTS / "chat-page-reader.png"))
    tab.keyboard.press("Escape")
    expect(reader).to_be_hidden()


def test_the_citations_work_from_the_keyboard(page):
    tab, _ = page
    reply = tab.locator(".assistant").last
    marker = reply.locator("a.cite").first
    marker.focus()
    tab.keyboard.press("Enter")  # a marker takes the focus to its citation's reader button
    read = tab.locator(marker.get_attribute("href")).locator("button.read")
    expect(read).to_be_focused()
    tab.keyboard.press("Enter")
    expect(tab.locator("#reader")).to_be_visible()
    expect(tab.locator("#reader-chosen")).to_be_visible()
    tab.keyboard.press("Escape")
    expect(tab.locator("#reader")).to_be_hidden()
    expect(read).to_be_focused()  # back where the reader was opened from


def test_follow_up_and_filters_in_the_page(page):
    tab, _ = page
    ask(tab, "And who wrote that?")
    reply = tab.locator(".assistant").last
    expect(reply.locator(".content")).to_contain_text("Michael Birnbaum")
    # a date filter that excludes the only article: the page says so, and cites nothing
    tab.fill("#before", "2020-01-01")
    ask(tab, "What range do the ATACMS missiles have?")
    reply = tab.locator(".assistant").last
    expect(reply.locator(".content")).to_contain_text("Not found in the indexed articles")
    expect(reply).to_have_class("assistant notfound done")
    expect(reply.locator(".citation")).to_have_count(0)
    tab.fill("#before", "")
    tab.fill("#source", "washingtonpost.com")
    ask(tab, "What range do the ATACMS missiles have?")
    expect(tab.locator(".assistant").last.locator(".content")).to_contain_text("190 miles")
    tab.screenshot(path=str(ARTIFACTS / "chat-page-filters.png"), full_page=True)


def test_the_page_sends_a_security_policy(page):
    _, base = page
    r = httpx.get(base + "/")
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    assert httpx.get(base + "/static/chat.js").status_code == 200
    assert httpx.get(base + "/static/../config.py").status_code == 404
