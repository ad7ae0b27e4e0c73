"""Text -> vectors: the ``Embedder`` interface and its runtimes, chosen by ``make_embedder``.

Heavy libraries (torch, onnxruntime, transformers) are imported only when a model is used.
"""

from __future__ import annotations

from rag.core.errors import RagError
from rag.embedding.base import Embedder

RUNTIMES = ("onnx-int8", "onnx", "torch")


def make_embedder(model: str, runtime: str = "onnx-int8", threads: int = 1) -> Embedder:
    """``onnx-int8`` (default: int8 weights, ~2x faster, slightly different vectors),
    ``onnx`` (the torch model's vectors, faster) or ``torch`` (any sentence-transformers
    pipeline, any device torch finds)."""
    if runtime not in RUNTIMES:
        raise RagError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    if runtime == "torch":
        from rag.embedding.models import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model, threads=threads)
    from rag.embedding.onnx import OnnxEmbedder

    return OnnxEmbedder(model, threads=threads, int8=runtime == "onnx-int8")


__all__ = ["RUNTIMES", "Embedder", "make_embedder"]
