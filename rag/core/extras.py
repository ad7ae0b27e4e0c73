"""Optional features and the extras that install them (pyproject.toml)."""

from __future__ import annotations

import importlib
from types import ModuleType

from rag.core.errors import RagError

PACKAGE = "rag-cited"


class MissingExtra(RagError):
    """A feature whose optional dependencies are not installed."""

    code = "missing_extra"
    http_status = 501


def need(module: str, extra: str, feature: str) -> ModuleType:
    """``module``, or one line naming the install command for ``feature``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{feature} needs the {extra!r} extra: pip install "
                           f"'{PACKAGE}[{extra}]'") from None
