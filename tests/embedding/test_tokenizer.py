"""Loading a model's tokenizer: a model whose tokenizer has no fast (Rust) form is one clear
error, not an AttributeError from deep inside the loader."""

from __future__ import annotations

import json

import pytest

from rag.core.errors import RagError
from rag.embedding.base import HfTokenizer


def test_a_tokenizer_with_no_fast_form_is_one_clear_error(tmp_path):
    # ByT5's tokenizer is pure Python in transformers: it loads from this file alone
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "ByT5Tokenizer"}))
    with pytest.raises(RagError, match=r"cannot load tokenizer for model .*: it has no "
                       r"tokenizer\.json and transformers cannot build a fast tokenizer "
                       r"from its ByT5Tokenizer"):
        HfTokenizer(str(tmp_path)).count_tokens(["a text"])
