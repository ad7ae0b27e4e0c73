"""report.html of a real run (the seed gold on the seed index) in a real headless Chromium
with every network request refused: it renders whole from the one file (summary table, the
embedded plot, the worst questions). A screenshot goes to test-artifacts/."""

from __future__ import annotations

import shutil

from playwright.sync_api import expect, sync_playwright

from rag.core.config import Settings
from rag.evaluation import evaluate as ev
from rag.evaluation import report as files
from rag.service import Service

from conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
# as in test_web_page.py: root in a sandbox with no network, no background traffic
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def test_the_html_report_renders_offline(seed_index, real_embedder, tmp_path):
    gold_path = ROOT / "eval" / "seed_gold.jsonl"
    svc = Service.open(Settings(index_dir=seed_index, model=real_embedder.name),
                       embedder=real_embedder)
    try:
        report = ev.run(lambda q, n: svc.ask(q, k=n), ev.load_gold(gold_path), k=10)
        report["settings"] = {"gold": str(gold_path), "format": "jsonl", "mode": "hybrid",
                              "k": 10, **svc.stats()}
    finally:
        svc.close()
    html = files.write(report, tmp_path / "out")[2]

    refused: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            def route(r):
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    refused.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("request", lambda req: None if req.url.startswith(("file:", "data:"))
                    else refused.append(req.url))
            page.goto(html.as_uri())
            summary = page.locator("#summary")
            expect(summary).to_be_visible()
            expect(summary.locator("tbody tr th", has_text="hits@10")).to_be_visible()
            row = summary.locator("tr", has=page.locator("th", has_text="url_recall@10"))
            expect(row.locator("td").first).to_have_text("1.0000")  # the one seed article
            expect(summary.locator("tr", has=page.locator("th", has_text="doc_ndcg@10"))
                   .locator("td").first).to_have_text("n/a")
            image = page.locator("img")
            expect(image).to_be_visible()
            assert image.evaluate("img => img.complete && img.naturalWidth") > 600
            expect(page.locator(".question")).to_have_count(10)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "eval-report.png"), full_page=True)
        finally:
            browser.close()
    assert not refused, refused
    assert not errors, errors
