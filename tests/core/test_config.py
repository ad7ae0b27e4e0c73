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


def test_docs_configuration_is_generated_from_the_settings():
    from rag.core.config import markdown

    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == markdown(), "docs/configuration.md is stale: run `make docs`"
    for name in Settings.model_fields:
        assert f"`RAG_{name.upper()}`" in page, name


def test_the_readme_settings_table_comes_from_the_same_source():
    from rag.core.config import COMMON, settings_table

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- settings:start -->")[1].split("<!-- settings:end -->")[0]
    assert block.strip() == settings_table(COMMON), "README settings are stale: run make docs"


def test_a_misspelt_variable_is_named():
    from rag.core.config import unknown_variables

    env = {"RAG_INDEX_DIR": "x", "RAG_INDX_DIR": "y", "RAG_api_keys": "k", "HOME": "/root"}
    assert unknown_variables(env) == ["RAG_INDX_DIR"]
