"""A tiny deterministic bag-of-words embedder: for plumbing tests only, never for quality."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from rag.embedding.base import Spans, part_text

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

    def encode_parts(self, text: str, parts: Sequence[Spans]) -> np.ndarray:
        """As the ONNX embedder's (one call: the text, then each part of it), with each part
        embedded as the words inside its spans."""
        words = [part_text(text, spans) for spans in parts]
        vecs = self.encode([text, *words])
        self.encoded -= len(words)  # one text embedded, as one model call
        return vecs
