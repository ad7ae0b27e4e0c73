"""The chat page at `/`, end to end in a real headless Chromium (Debian's `chromium`, driven by
Playwright) against a real server: ask about the seed article, see the cited answer, expand
the citation. Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

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


def test_question_about_the_seed_gets_a_cited_answer(page):
    tab, base = page
    tab.goto(base + "/")
    expect(tab.locator("#status")).to_have_text("1 article(s) indexed")
    ask(tab, "What range do the ATACMS missiles have?")
    reply = tab.locator(".assistant").last
    expect(reply.locator(".content")).to_contain_text("190 miles")
    marker = reply.locator("a.cite").first
    expect(marker).to_have_text("[1]")
    link = reply.locator(f'.citation a.title[href="{SEED_URL}"]').first  # 5 passages of it
    expect(link).to_be_visible()
    expect(link).to_have_attribute("target", "_blank")
    first = reply.locator(".citation").first
    expect(first.locator(".byline")).to_contain_text("Michael Birnbaum")
    expect(first.locator(".byline")).to_contain_text("2024-11-26")

    marker.click()  # opens the passage, with its supporting sentence highlighted
    passage = first.locator(".passage")
    expect(passage).to_be_visible()
    mark = passage.locator("mark")
    expect(mark).to_have_count(1)
    assert mark.inner_text().strip() and mark.inner_text() in passage.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "chat-page.png"), full_page=True)


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
    import httpx

    r = httpx.get(base + "/")
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    assert httpx.get(base + "/static/chat.js").status_code == 200
    assert httpx.get(base + "/static/../config.py").status_code == 404
