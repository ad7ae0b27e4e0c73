"""ONNX Runtime backend for sentence-transformers models: the same vectors, faster on CPU.

The model's transformer is exported once to ONNX (with torch, from the local weights; nothing
is downloaded) into a cache directory, and then run by onnxruntime with mean pooling and L2
normalisation done in numpy, as sentence-transformers does. Every text is its own model call
on one thread, with ``threads`` calls at once: no padding, and each text's int8 activations
are scaled by themselves, so its vector does not depend on what it is embedded with (on this
machine's 2 cores: 1.35x the padded batches of 32 on a two-thread session). ``int8`` adds
dynamic per-channel int8 quantisation of the weights: about 2x faster again, but the vectors
change slightly, so it is a different model name (an index built with it refuses the fp32
model and vice versa); its quality on the dev split is in eval/README.md.

sentence-transformers' own ONNX backend needs ``optimum``, which cannot be installed beside
sentence-transformers 6; exporting with ``torch.onnx`` needs only the ``onnx`` package.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.config import INT8_SUFFIX
from rag.core.errors import RagError
from rag.embedding.base import HfTokenizer, Spans, part_text

_SUPPORTED = ("sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
              "sentence_transformers.models.Normalize")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag-cited" / "onnx"


def check_pipeline(model_dir: Path) -> None:
    """The ONNX path reproduces Transformer -> mean Pooling -> Normalize, nothing else."""
    modules = model_dir / "modules.json"
    types = [m["type"] for m in json.loads(modules.read_text())] if modules.is_file() else []
    pooling = model_dir / "1_Pooling" / "config.json"
    mean = pooling.is_file() and json.loads(pooling.read_text()).get("pooling_mode_mean_tokens")
    if not types or any(t not in _SUPPORTED for t in types) or not mean:
        raise RagError(f"the onnx backend supports Transformer + mean pooling models only; "
                       f"{model_dir} has {types or 'no modules.json'}: set RAG_RUNTIME=torch")


def export(model_dir: Path, target: Path, int8: bool) -> None:
    """Write ``target`` (atomically): the transformer in ONNX, int8-quantised if asked."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    target.parent.mkdir(parents=True, exist_ok=True)
    fp32 = target.with_name("model.onnx")
    if not fp32.exists():
        # eager attention exports to the pattern onnxruntime fuses into one Attention op
        bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
        enc = AutoTokenizer.from_pretrained(model_dir)(["a b", "c d e"], padding=True,
                                                        return_tensors="pt")

        class Hidden(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.model(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
        tmp = fp32.with_name(f".model.{os.getpid()}.onnx")
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(Hidden(bert), tuple(enc[n] for n in _INPUTS), str(tmp),
                              input_names=list(_INPUTS), output_names=["last_hidden_state"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        os.replace(tmp, fp32)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = target.with_name(f".int8.{os.getpid()}.onnx")
        logging.disable(logging.WARNING)  # its advice to pre-process is logged on the root
        try:
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.disable(logging.NOTSET)
        os.replace(tmp, target)


def model_identity_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.iterdir()
                  if p.suffix in (".safetensors", ".bin", ".json", ".txt"))


def sample(path: Path, size: int = 1 << 20) -> bytes:
    """The first and last MiB of a file: with its name and size, what identifies a model's
    files without reading 90 MB on every start (the model's path is not part of the key, so
    a new virtualenv reuses the export)."""
    with path.open("rb") as f:
        head = f.read(size)
        f.seek(max(0, path.stat().st_size - size))
        return head + f.read(size)


class OnnxEmbedder(HfTokenizer):
    """Tokenizer, token counting and truncation as the torch embedder; ``encode`` on ONNX."""

    def __init__(self, model: str, threads: int = 1, int8: bool = False):
        super().__init__(model)
        self._workers = max(1, threads)
        self._int8 = int8
        if int8:
            self.name += INT8_SUFFIX
        self._session: Any = None
        self._model_input: Any = None  # the tokenizer, cutting at the model's window

    def _model_file(self) -> Path:
        model_dir = self._model_dir()
        check_pipeline(model_dir)
        digest = hashlib.sha256()
        for p in model_identity_files(model_dir):
            digest.update(f"{p.name}:{p.stat().st_size}:".encode() + sample(p))
        target = cache_root() / digest.hexdigest()[:16] / (
            "model-int8.onnx" if self._int8 else "model.onnx")
        if not target.exists():
            try:
                export(model_dir, target, self._int8)
            except RagError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise RagError(f"cannot export model {self.name!r} to ONNX: {exc}") from exc
        return target

    def _load_model(self):
        with self._load_lock:
            return self._load_session()

    def _load_session(self):
        if self._session is None:
            self._onnx_file = path = self._model_file()
            session = _session(path, 1)  # calls run side by side instead (see encode)
            from tokenizers import Tokenizer

            model_input = Tokenizer.from_str(self._load_tokenizer().to_str())
            assert self._max_seq is not None
            model_input.enable_truncation(self._max_seq)
            self._model_input = model_input
            self._session = session
            out = session.get_outputs()[0].shape[-1]
            self._dim = int(out) if isinstance(out, int) else None
            if self._dim is None:
                self._dim = int(self._run("a").shape[0])
        return self._session

    def _states(self, text: str):
        """The model's output states of one text (its first window of tokens, with the
        special tokens), and its encoding (``tokenizers.Encoding``: ids, offsets)."""
        assert self._session is not None
        enc = self._model_input.encode(text)
        feeds = {name: np.array([values], dtype=np.int64) for name, values in
                 zip(_INPUTS, (enc.ids, enc.attention_mask, enc.type_ids), strict=True)}
        return self._session.run(None, feeds)[0], enc

    def _run(self, text: str) -> np.ndarray:
        hidden, enc = self._states(text)
        return _mean_pooled(hidden, np.array([enc.attention_mask]))[0]

    def encode_parts(self, text: str, parts: Sequence[Spans]) -> np.ndarray:
        """One model call: row 0 is the text's vector (as ``encode`` makes it), row i the
        L2-normalised mean of the output states of the tokens inside part i's (start, end)
        character spans of the text. A part with no token in the model's window (a long text
        is truncated) is embedded alone instead."""
        self._load_model()
        hidden, enc = self._states(text)
        out = np.zeros((1 + len(parts), hidden.shape[-1]), dtype=np.float32)
        out[0] = _mean_pooled(hidden, np.array([enc.attention_mask]))[0]
        offsets = np.array(enc.offsets).reshape(-1, 2)
        begin, end = offsets[:, 0], offsets[:, 1]
        for row, spans in enumerate(parts, start=1):
            inside = np.zeros(len(offsets), dtype=bool)
            for b, e in spans:
                inside |= (begin >= b) & (end <= e) & (end > begin)  # [CLS]/[SEP] are (0, 0)
            if inside.any():
                pooled = hidden[0][inside].mean(axis=0)
                out[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
            else:
                out[row] = self._run(part_text(text, spans))
        return out

    @property
    def threads(self) -> int:
        """Threads per model call: one (``threads`` calls run at once in ``encode``)."""
        return 1

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One text per model call, ``threads`` calls at once (onnxruntime releases the GIL),
        longest first so the threads finish together; vectors in the caller's order.

        Measured on 400 dev chunks (~250 tokens, int8): one thread embeds 38 texts/s one at a
        time against 29/s in padded batches of 32; two calls at once 72/s against 54/s for
        batches of 32 on a two-thread session (two threads inside one call wait on each other
        at every operator of a small model)."""
        self._load_model()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        workers = min(self._workers, len(order))
        if workers <= 1:
            for i in order:
                out[i] = self._run(texts[i])
            return out
        with ThreadPoolExecutor(workers, thread_name_prefix="onnx") as pool:
            for i, vec in zip(order, pool.map(lambda i: self._run(texts[i]), order),
                              strict=True):
                out[i] = vec
        return out


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _mean_pooled(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling and L2 normalisation, in numpy."""
    mask = attention_mask[..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.maximum(norms, 1e-12)
