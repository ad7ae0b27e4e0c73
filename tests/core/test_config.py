"""Settings: flags, then RAG_* variables, then defaults; every setting documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.core.config import Settings

from conftest import ROOT


def test_defaults(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(f"RAG_{name.upper()}", raising=False)
    s = Settings()
    assert s.index_dir == Path("index") and s.model == "all-MiniLM-L6-v2"
    assert s.thread_count(serving=True) == 1 and s.thread_count() >= 1


def test_environment_then_flags(monkeypatch):
    monkeypatch.setenv("RAG_INDEX_DIR", "/tmp/from-env")
    monkeypatch.setenv("RAG_CHUNK_TOKENS", "100")
    assert Settings().index_dir == Path("/tmp/from-env")
    assert Settings().chunk_tokens == 100
    assert Settings(index_dir=Path("/tmp/from-flag")).index_dir == Path("/tmp/from-flag")


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("RAG_PORT", "99999")
    with pytest.raises(ValidationError):
        Settings()


def test_every_setting_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`RAG_{name.upper()}`" in readme, name
