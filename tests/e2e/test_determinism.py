"""Rankings do not depend on Python's hash seed (real processes, another seed each)."""

from __future__ import annotations

import subprocess
import sys

SOURCES = ["The Verge", "TechCrunch", "FOX News - Entertainment", "Fortune", "The Age",
           "The Independent - Life and Style", "Sporting News", "CBSSports.com"]


def test_the_order_does_not_depend_on_the_hash_seed():
    """Equal-length names ("Fortune", "The Age") come in one order in every process."""
    code = ("from rag.text.hints import mentioned_sources; import sys; "
            f"print(mentioned_sources('Did Fortune or The Age report it first?', {SOURCES!r}))")
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(seed)}).stdout for seed in range(6)}
    assert seen == {"['Fortune', 'The Age']\n"}
