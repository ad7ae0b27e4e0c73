"""The ONNX backend against the torch model it is exported from (real weights, no mocks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import RagError
from rag.embedding import make_embedder
from rag.embedding.models import SentenceTransformerEmbedder
from rag.embedding.onnx import INT8_SUFFIX, OnnxEmbedder, check_pipeline

TEXTS = [
    "What range do the ATACMS missiles have?",
    "ok",
    "",
    "Ukraine has used the missiles to strike Russian air bases. " * 60,  # past 256 tokens
    "Sam Bankman-Fried's trial started Tuesday in Manhattan.",
]


@pytest.fixture(scope="module")
def torch_vectors():
    return SentenceTransformerEmbedder(threads=1).encode(TEXTS)


def test_onnx_gives_the_torch_vectors(torch_vectors):
    onnx = make_embedder("all-MiniLM-L6-v2", threads=1, runtime="onnx")
    assert isinstance(onnx, OnnxEmbedder)
    assert onnx.name == "sentence-transformers/all-MiniLM-L6-v2"  # same index, same cache
    vecs = onnx.encode(TEXTS)
    assert vecs.shape == torch_vectors.shape and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float((vecs * torch_vectors).sum(axis=1).min()) > 0.99999


def test_order_is_kept_when_texts_run_longest_first():
    onnx = OnnxEmbedder("all-MiniLM-L6-v2", threads=1)
    together = onnx.encode(TEXTS)
    alone = np.vstack([onnx.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert onnx.encode([]).shape == (0, 384)


@pytest.mark.parametrize("int8", [False, True])
def test_a_vector_does_not_depend_on_its_neighbours_or_the_threads(int8):
    """One text per model call: int8 activations are scaled per call, so with batches a
    text's int8 vector changed with its batch-mates; now alone, in a list, on one thread or
    on two, it is the same vector, bit for bit (what makes re-ingests and Ray reproducible)."""
    texts = [*TEXTS, *(f"{t} number {i}." for i in range(12) for t in TEXTS[:2])]
    two = OnnxEmbedder("all-MiniLM-L6-v2", threads=2, int8=int8)
    one = OnnxEmbedder("all-MiniLM-L6-v2", threads=1, int8=int8)
    assert two.threads == 1  # per model call; the two threads are two calls at once
    together = two.encode(texts)
    np.testing.assert_array_equal(together, one.encode(texts))
    np.testing.assert_array_equal(together[::-1], two.encode(texts[::-1]))
    np.testing.assert_array_equal(together[3], one.encode([texts[3]])[0])


def test_int8_is_close_but_a_different_model(torch_vectors):
    int8 = make_embedder("all-MiniLM-L6-v2", threads=1, runtime="onnx-int8")
    assert int8.name.endswith(INT8_SUFFIX)  # its vectors differ: an index refuses to mix them
    cos = (int8.encode(TEXTS) * torch_vectors).sum(axis=1)
    assert float(cos.min()) > 0.9  # quality is measured on the dev set, not here
    assert float(cos.min()) < 0.99999


def test_unsupported_pipelines_and_backends_are_refused(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([
        {"type": "sentence_transformers.models.Transformer"},
        {"type": "sentence_transformers.models.Pooling"},
        {"type": "sentence_transformers.models.Dense"}]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    with pytest.raises(RagError, match="RAG_RUNTIME=torch"):
        check_pipeline(tmp_path)
    with pytest.raises(RagError, match="unknown runtime"):
        make_embedder("all-MiniLM-L6-v2", runtime="tensorrt")
    assert isinstance(make_embedder("all-MiniLM-L6-v2", runtime="torch"),
                      SentenceTransformerEmbedder)
    assert not isinstance(make_embedder("all-MiniLM-L6-v2", runtime="torch"), OnnxEmbedder)


def test_concurrent_encode_and_token_counts_do_not_corrupt_each_other():
    """A query (padded batch) beside an HTTP ingest (token counting) in another thread."""
    import threading

    onnx = OnnxEmbedder("all-MiniLM-L6-v2", threads=1)
    many = [f"{t} {i}" for i in range(40) for t in TEXTS]  # long batches: a wide window
    expected = onnx.encode(TEXTS)
    counts = onnx.count_tokens(many)
    failures: list[str] = []

    def query() -> None:
        for _ in range(30):
            if not np.allclose(onnx.encode(TEXTS), expected, atol=1e-5):
                failures.append("vectors changed")

    def ingest() -> None:
        for _ in range(60):
            if onnx.count_tokens(many) != counts:
                failures.append("token counts changed")

    threads = [threading.Thread(target=f) for f in (query, query, ingest, ingest)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]


@pytest.mark.parametrize("int8", [False, True])
def test_parts_of_a_question_are_pooled_from_its_own_model_call(int8):
    """encode_parts: the question's own vector bit for bit, and for each clause the mean of
    the question's output states over the clause's tokens, which is nearer to that clause
    embedded alone than to the other clause (so the character spans pick the right tokens);
    a clause past the model's window is embedded alone."""
    onnx = OnnxEmbedder("all-MiniLM-L6-v2", threads=1, int8=int8)
    q = ("Does the TechCrunch article say the startup's funding round was led by Sequoia, "
         "while the BBC report describes flooding along the river Thames?")
    cut = q.index("the BBC")
    first, second = [(0, cut)], [(cut, len(q))]
    vecs = onnx.encode_parts(q, [first, second])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_array_equal(vecs[0], onnx.encode([q])[0])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    alone = onnx.encode([q[:cut], q[cut:]])
    sims = vecs[1:] @ alone.T
    assert sims[0, 0] > sims[0, 1] + 0.1 and sims[1, 1] > sims[1, 0] + 0.1, sims
    assert min(sims[0, 0], sims[1, 1]) > 0.75
    # a part of two pieces pools the tokens of both
    both = onnx.encode_parts(q, [first + second])[1]
    assert float(both @ vecs[0]) > 0.95
    long_q = "Ukraine has used the missiles to strike Russian air bases. " * 60 + "BBC flood"
    tail = [(len(long_q) - 9, len(long_q))]
    np.testing.assert_allclose(onnx.encode_parts(long_q, [tail])[1],
                               onnx.encode(["BBC flood"])[0], atol=1e-6)


def test_the_tokenizer_gives_transformers_ids_and_offsets():
    """tokenizers reads the model's tokenizer.json; transformers' AutoTokenizer (what the
    torch runtime and the ONNX export use) gives the same ids, offsets and window."""
    from transformers import AutoTokenizer

    onnx = OnnxEmbedder("all-MiniLM-L6-v2", threads=1)
    onnx.encode(["warm"])
    hf = AutoTokenizer.from_pretrained(onnx._path)
    texts = [*TEXTS, "Ünïcödé ﬁ café\u200b 東京 🤖 — “quoted”", "a\tb\n\nc  d", "x" * 3000]
    assert onnx.count_tokens(texts) == [len(ids) for ids in hf(
        texts, add_special_tokens=False)["input_ids"]]
    for text in texts:
        plain = hf(text, add_special_tokens=False, return_offsets_mapping=True)
        cut = 7
        expected = text if len(plain["input_ids"]) <= cut else text[
            : plain["offset_mapping"][cut - 1][1]]
        assert onnx.truncate(text, cut) == expected
        window = hf(text, truncation=True, max_length=onnx._max_seq)
        assert onnx._model_input.encode(text).ids == window["input_ids"]


def test_embedding_on_onnx_never_imports_torch_or_transformers():
    """A server or CLI process on the ONNX runtimes: torch and transformers cost ~2.5 s of
    start-up and ~200 MB, and it needs neither (the export, cached here first, does)."""
    import os
    import subprocess
    import sys

    make_embedder("all-MiniLM-L6-v2", threads=1).encode(["export the model first"])
    code = ("import sys; from rag.embedding import make_embedder\n"
            "e = make_embedder('all-MiniLM-L6-v2', threads=1)\n"
            "e.encode(['a question']); e.encode_parts('a b c', [((0, 1),)])\n"
            "e.count_tokens(['a']); e.truncate('a b', 1)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'transformers', 'sentence_transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_model_named_by_its_hub_id_loads_from_the_offline_cache(tmp_path):
    """RAG_MODEL may name a model in the Hugging Face cache (offline): its tokenizer and
    window are read from the cached snapshot, as from a directory."""
    import os
    import subprocess
    import sys

    from rag.embedding.base import resolve_model_path

    snapshot = tmp_path / "hub" / "models--acme--mini" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    for item in Path(resolve_model_path("all-MiniLM-L6-v2")).iterdir():
        (snapshot / item.name).symlink_to(item)
    expected = make_embedder("all-MiniLM-L6-v2", threads=1).encode([TEXTS[0]])[0]
    code = ("import json; from rag.embedding import make_embedder\n"
            "e = make_embedder('acme/mini', threads=1)\n"
            f"print(json.dumps([e.max_tokens, e.encode([{TEXTS[0]!r}])[0].tolist()]))")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    max_tokens, vector = json.loads(out.stdout)
    assert max_tokens == 254
    assert np.allclose(vector, expected, atol=1e-6)
    missing = subprocess.run([sys.executable, "-c", code.replace("acme/mini", "acme/none")],
                             capture_output=True, text=True, timeout=300, env=env)
    assert missing.returncode == 1 and "'acme/none' is not a local directory or cached" in (
        missing.stderr)
