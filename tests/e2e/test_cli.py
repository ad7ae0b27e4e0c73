"""The CLI as a user runs it: real subprocesses, real exit codes, one-line reasons."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import RAG, ROOT, SEED_FILE, SEED_URL
from helpers import REJECTIONS


def rag(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([*RAG, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, seed_index) -> Path:
    """A private copy of the seed index that these tests may write to."""
    target = tmp_path_factory.mktemp("cli") / "index"
    shutil.copytree(seed_index, target)
    return target


def snapshot(index: Path) -> dict:
    out = rag("stats", "--index", str(index), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_help_is_instant_and_lists_the_verbs():
    out = rag("--help")
    assert out.returncode == 0
    for verb in ("ingest", "query", "serve", "stats"):
        assert verb in out.stdout


def test_query_human_and_json(cli_index):
    out = rag("query", "What is the range of the ATACMS missiles?", "--index", str(cli_index))
    assert out.returncode == 0, out.stderr
    assert "[1]" in out.stdout and SEED_URL in out.stdout
    out = rag("query", "What is the range of the ATACMS missiles?", "-k", "2", "--json",
              "--index", str(cli_index))
    data = json.loads(out.stdout)
    assert len(data["passages"]) == 2 and "190 miles" in data["answer"]["text"]
    assert any("190 miles" in p["text"] for p in data["passages"])


@pytest.mark.parametrize(("question", "answer"), [
    ("ATACMS range", "range of about 190 miles"),  # search-box words
    ("Who is Kurt Volker?", "Kurt Volker, who served as"),  # a short question
])
def test_short_questions_get_an_answer(cli_index, question, answer):
    out = rag("query", question, "-k", "3", "--index", str(cli_index))
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("Answer: ") and answer in first, out.stdout


def test_no_direct_answer_says_so_and_lists_the_closest_passages(cli_index):
    out = rag("query", "What did the central bank decide about interest rates?",
              "--index", str(cli_index))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "No sentence answers this directly; closest passages:"
    assert lines[2].startswith("[1] ") and SEED_URL in out.stdout
    assert "not found" not in out.stdout.lower()


def test_reingest_unchanged_is_a_no_op(cli_index):
    before = snapshot(cli_index)
    out = rag("ingest", str(ROOT / "seeds"), "--index", str(cli_index), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["unchanged"] == 1 and summary["texts_embedded"] == 0
    assert snapshot(cli_index) == before


def test_every_rejection_through_the_cli_leaves_the_index_unchanged(cli_index, tmp_path):
    before = snapshot(cli_index)
    for name, text, _ in REJECTIONS:
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "latin.txt").write_bytes(SEED_FILE.read_bytes() + b"\xff")
    (tmp_path / "huge.txt").write_text(SEED_FILE.read_text() + "x" * 200, encoding="utf-8")
    out = rag("ingest", str(tmp_path), "--index", str(cli_index),
              env={"RAG_MAX_ARTICLE_BYTES": str(SEED_FILE.stat().st_size + 100)})
    assert out.returncode == 1
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("rejected: ")]
    assert len(lines) == len(REJECTIONS) + 2
    for name, _, reason in REJECTIONS:
        assert any(name in ln and reason in ln for ln in lines), name
    assert any("latin.txt" in ln and "UTF-8" in ln for ln in lines)
    assert any("huge.txt" in ln and "over the limit" in ln for ln in lines)
    assert "Traceback" not in out.stderr
    assert snapshot(cli_index) == before


def test_good_and_bad_files_together(cli_index, tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(
        {"url": "https://example.org/new", "title": "A new story", "author": "Ann Lee",
         "published_date": "2024-01-02", "body": "The new story has a body of text."}))
    (tmp_path / "bad.txt").write_text("no url here")
    out = rag("ingest", str(tmp_path), "--index", str(cli_index), "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["added"] == 1
    assert "bad.txt" in out.stderr
    assert snapshot(cli_index)["documents"] == 2


def test_other_model_refused_with_rebuild_hint(cli_index):
    out = rag("query", "anything", "--index", str(cli_index),
              env={"RAG_MODEL": "some/other-model"})
    assert out.returncode == 2
    assert "built with model" in out.stderr and "--rebuild" in out.stderr
    assert "Traceback" not in out.stderr


def test_another_model_is_refused_with_settings_that_work(cli_index):
    """An index built with another model names the settings it was built with; set as
    said, the same command answers."""
    out = rag("query", "ATACMS range", "--index", str(cli_index),
              env={"RAG_MODEL": "/no/such/model"})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    said = re.search(r"; set (.+?) or rebuild it with", out.stderr)
    assert said, out.stderr[-500:]
    env = dict(pair.split("=", 1) for pair in shlex.split(said.group(1)))
    assert env == {"RAG_MODEL": "sentence-transformers/all-MiniLM-L6-v2",
                   "RAG_RUNTIME": "onnx-int8"}
    again = rag("query", "ATACMS range", "--index", str(cli_index), env=env)
    assert again.returncode == 0 and "190 miles" in again.stdout, again.stderr[-500:]


def test_an_index_is_never_built_over_other_files(tmp_path):
    """A mistyped --index (a folder of documents, a file) is refused in one line, with or
    without --rebuild, and what was there is untouched."""
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    for where in (folder, folder / "thesis.txt"):
        for extra in ((), ("--rebuild",)):
            out = rag("ingest", str(SEED_FILE), "--index", str(where), *extra)
            assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-500:]
            assert out.stderr.startswith(f"error: cannot {'rebuild' if extra else 'create'} "
                                         f"an index at {where}/")
            assert "nothing was changed" in out.stderr
    assert [p.name for p in folder.iterdir()] == ["thesis.txt"]
    assert (folder / "thesis.txt").read_text() == "years of work"


def test_bad_arguments(cli_index, tmp_path):
    out = rag("query", "x", "--mode", "fuzzy", "--index", str(cli_index))
    assert out.returncode == 2
    assert "'fuzzy' is not one of 'hybrid', 'dense', 'keyword'" in out.stderr
    out = rag("query", "x", "--after", "2024-02-30", "--index", str(cli_index))
    assert out.returncode == 2 and "not a date" in out.stderr
    out = rag("stats", "--index", str(tmp_path / "missing"))
    assert out.returncode == 2 and "no index" in out.stderr
    # a malformed setting or flag value, and a question that is not UTF-8: one line, exit 2
    for args, env, said in (
            (["stats", "--index", str(cli_index)], {"RAG_PORT": "abc"},
             "error: RAG_PORT: Input should be a valid integer"),
            (["serve", "--port", "99999", "--index", str(cli_index)], {},
             "error: --port: Input should be less than or equal to 65535"),
            (["query", "range \udcff of missiles", "--index", str(cli_index)], {},
             "error: question is not valid text")):
        out = rag(*args, env=env)
        assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith(said), \
            out.stderr[-500:]
        assert "Traceback" not in out.stderr
