"""Indexes: one ``Index`` interface, two backends, chosen by ``open_index`` alone."""

from rag.index.base import DocumentWrite, Index, IndexParams, Ranking
from rag.index.factory import IndexLocation, open_index

__all__ = ["DocumentWrite", "Index", "IndexLocation", "IndexParams", "Ranking", "open_index"]
