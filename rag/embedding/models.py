"""Any sentence-transformers model on torch (``RAG_RUNTIME=torch``).

The model (and torch) is imported lazily, on the first ``encode``: counting tokens for
chunking needs only the tokenizer, so re-ingesting unchanged text never loads the model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.core.config import DEFAULT_MODEL
from rag.core.errors import RagError
from rag.embedding.base import HfTokenizer, Spans, part_text

BATCH_SIZE = 32  # texts per forward pass


class SentenceTransformerEmbedder(HfTokenizer):
    """A sentence-transformers model on torch, on the best device torch finds."""

    def __init__(self, model: str = DEFAULT_MODEL, threads: int = 1):
        super().__init__(model)
        self._threads = threads
        self._model: Any = None
        # its own (transformers) tokenizer changes its padding and truncation per call:
        # concurrent calls would corrupt each other's batches
        self._encode_lock = threading.Lock()

    def _load_model(self):
        with self._load_lock:
            if self._model is None:
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.set_verbosity_error()
                hf_logging.disable_progress_bar()
                torch.set_num_threads(self._threads)
                try:
                    self._model = SentenceTransformer(self._path)
                except Exception as exc:  # noqa: BLE001
                    raise RagError(f"cannot load embedding model {self.name!r}: "
                                   f"{exc}") from exc
                self._max_seq = int(self._model.max_seq_length)
                self._dim = int(self._model.get_embedding_dimension())
            return self._model

    @property
    def threads(self) -> int:
        """Intra-op threads per model call."""
        return self._threads

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load_model()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._encode_lock:
            vecs = model.encode(list(texts), batch_size=BATCH_SIZE, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_parts(self, text: str, parts: Sequence[Spans]) -> np.ndarray:
        """The text, then each part embedded alone (one call each: torch serialises them)."""
        return np.concatenate([self.encode([text]),
                               *(self.encode([part_text(text, spans)]) for spans in parts)])
