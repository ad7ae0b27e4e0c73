"""A first run without traps, as a new user meets it: the README's quickstart output is what
a running server prints, /docs works with no network, a typo'd index is refused, logs are
clean and say where things are, error messages hint at the fix, help shows the choices."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import httpx
import pytest

from rag import __version__

from conftest import RAG, ROOT, serving

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def rag(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*RAG, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def trimmed(response: dict) -> dict:
    """The README's quickstart shape of a /query response."""
    answer = response["answer"]
    return {"question": response["question"], "answer": answer["text"] if answer else None,
            "passages": [{key: p[key] for key in ("rank", "score", "chunk_id", "url", "author",
                                                   "published_date", "char_start", "char_end")}
                         | {"highlight": p["highlight"]["text"]}
                         for p in response["passages"]]}


def test_the_readme_quickstart_prints_what_a_server_answers(seed_server):
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- quickstart:start -->")[1].split("<!-- quickstart:end -->")[0]
    shown = json.loads(block.strip().removeprefix("```json").removesuffix("```"))
    command = re.search(r"-d '(\{.*?\})'", readme).group(1)
    real = httpx.post(f"{seed_server}/query", json=json.loads(command), timeout=60).json()
    assert trimmed(real) == shown, "README quickstart is stale"


def test_the_api_docs_render_with_the_network_off(seed_server):
    from playwright.sync_api import expect, sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    headless=True, args=FLAGS)
        try:
            tab = browser.new_page()

            def only_local(route):
                if route.request.url.startswith(seed_server):
                    route.continue_()
                else:  # the network is off: anything else fails, and is counted
                    outside.append(route.request.url)
                    route.abort()

            tab.route("**/*", only_local)
            tab.goto(f"{seed_server}/docs")
            expect(tab.locator(".opblock-summary-path", has_text="/query").first).to_be_visible(
                timeout=30_000)
            assert tab.locator(".opblock").count() >= 10  # every operation is listed
            tab.goto(f"{seed_server}/redoc")
            expect(tab.get_by_role("menuitem", name="query")).to_be_attached(timeout=30_000)
            expect(tab.get_by_role("heading", level=1)).to_contain_text(
                f"rag: cited retrieval and question answering ({__version__})")
        finally:
            browser.close()
    assert [u for u in outside if "cdn.redoc.ly" not in u] == []  # ReDoc's own logo link


def test_serve_refuses_a_missing_index_and_creates_one_only_when_asked(tmp_path):
    typo = tmp_path / "indx"
    out = rag("serve", "--index", str(typo), "--port", "1")
    assert out.returncode == 2 and not typo.exists()
    assert f"no index at {typo}/" in out.stderr and "rag ingest" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    missing = tmp_path / "missing.json"
    out = rag("ingest", str(missing), "--index", str(tmp_path / "new-index"))
    assert out.returncode == 2 and "no such file or directory" in out.stderr
    assert not (tmp_path / "new-index").exists()


def test_serve_create_makes_an_empty_index(tmp_path):
    index = tmp_path / "fresh"
    with serving(index, extra_args=["--create"]) as base:
        assert httpx.get(f"{base}/health").json()["documents"] == 0


def test_one_log_line_per_request_and_a_banner_with_the_urls(seed_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    with serving(index) as base:
        httpx.get(f"{base}/health/live", headers={"X-Request-ID": "trace-me-1"})
        log_file = tmp_path / next(p.name for p in tmp_path.glob("server-*.log"))
        # the line is written once the response has gone out: on a loaded machine the
        # client can read the log first
        deadline = time.monotonic() + 10
        while "trace-me-1" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = log_file.read_text()
    assert sum("trace-me-1" in line for line in log.splitlines()) == 1
    assert "GET /health/live HTTP/1.1" not in log  # uvicorn's own access line is off
    port = base.rsplit(":", 1)[1]
    for url in (f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/docs",
                f"http://127.0.0.1:{port}/v1"):
        assert url in log, url
    assert "ModuleNotFoundError" not in log and "Traceback" not in log


@pytest.mark.parametrize("body, hint", [
    ({"question": "ATACMS range", "top_k": 3}, "top_k: unknown field; did you mean `k`?"),
    ({"question": "ATACMS range", "filters": {"author": ["A"]}},
     "filters.author: unknown field; did you mean `authors`?"),
    ({"question": "ATACMS range", "mdoe": "dense"}, "did you mean `mode`?"),
])
def test_unknown_fields_get_a_hint(seed_server, body, hint):
    r = httpx.post(f"{seed_server}/query", json=body)
    assert r.status_code == 422 and hint in r.json()["error"]["message"]


def test_bad_json_and_content_types_are_said_plainly(seed_server):
    r = httpx.post(f"{seed_server}/query", content='{"question": "x",\n "k": }',
                   headers={"content-type": "application/json"})
    message = r.json()["error"]["message"]
    assert r.status_code == 422 and "line 2, column 7" in message, message
    r = httpx.post(f"{seed_server}/query", content='{"question": "x"}',
                   headers={"content-type": "text/plain"})
    message = r.json()["error"]["message"]
    assert r.status_code == 422 and "Content-Type: application/json" in message, message
    assert "text/plain" in message


def test_help_shows_choices_and_defaults():
    out = rag("query", "--help")
    assert out.returncode == 0 and "<bool>" not in out.stdout and "<int" not in out.stdout
    assert "<hybrid|dense|keyword>" in out.stdout and "default: hybrid" in out.stdout
    assert "-k N " in out.stdout and "1<=x<=50" in out.stdout
    assert "PATH..." in rag("ingest", "--help").stdout


def test_a_misspelt_variable_is_named(seed_index):
    out = rag("stats", "--index", str(seed_index), env={"RAG_INDX_DIR": "x"})
    assert out.returncode == 0
    assert "warning: RAG_INDX_DIR is not a setting" in out.stderr


def test_faiss_loader_noise_is_not_shown(seed_index):
    out = rag("query", "ATACMS range", "--index", str(seed_index))
    assert out.returncode == 0 and out.stderr == "", out.stderr
