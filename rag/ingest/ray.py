"""`rag ingest --ray`: chunking and embedding on a Ray cluster; decisions and writes stay here.

The driver (this process) does what needs the whole index or must happen once: parsing the
inputs (they are on this machine's disk, a remote cluster cannot read them, and the
duplicate-URL check needs the whole batch; it is ~1% of the work), comparing content hashes,
looking up cached embeddings and every write, in the local path's own write loop
(``write_groups`` in rag/ingest/pipeline.py), so it works with either index backend. The
cluster does the expensive part, with Ray Data: tokenizer-driven chunking of the new and
changed articles, then embedding of the texts the index does not already hold.

The result is the local ingest's, exactly: the same chunks, the same report, and the same
vectors. The ONNX runtimes embed one text per model call, so a vector does not depend on the
texts beside it (dynamic int8 quantisation scales a call's activations together: in shared
batches, vectors were up to 0.03 apart on the dev articles); the driver still forms the
local ingest's batches (per commit group, longest text first, ``batch_size`` at a time) as
the units of work, and each Ray row is one of them, so the torch runtime's batches match too.
Groups are committed as soon as all their texts are back, as the local path commits every
``commit_every`` articles, so a crash loses at most the groups in flight.

Workers import ``rag``: on a real cluster every node needs this project installed (the same
version, so the same chunking and model), and the ONNX export is built once per node.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag.core.documents import Article, Chunk
from rag.core.errors import RagError, RejectedInput
from rag.embedding import Embedder, make_embedder
from rag.index.base import Index
from rag.ingest.pipeline import (
    Group,
    IngestReport,
    Progress,
    chunk_budget,
    finish,
    plan_article,
    triage,
    write_groups,
)

BATCH_SIZE = 32  # texts per unit of work: one Ray row, one model call on a worker
ARTICLES_PER_TASK = 16  # chunking tasks: big enough to amortise a task, small enough to spread


@dataclass(frozen=True)
class EmbedderSpec:
    """How a worker builds the driver's embedder (picklable, hashable for the task cache)."""

    model: str
    runtime: str
    threads: int = 1

    def build(self) -> Embedder:
        return make_embedder(self.model, runtime=self.runtime, threads=self.threads)


# ---------------------------------------------------------------- on the workers


@functools.cache
def _tokenizing_embedder(spec: EmbedderSpec) -> Embedder:
    """One per worker process: chunking needs only the tokenizer, which loads lazily."""
    return spec.build()


def plan_batch(batch: dict[str, np.ndarray], spec: EmbedderSpec, budget: int,
               overlap: int) -> dict[str, list]:
    """Article rows -> one row per chunk (offsets, token count, the text to embed)."""
    embedder = _tokenizing_embedder(spec)
    out: dict[str, list] = {k: [] for k in ("article", "ordinal", "char_start", "char_end",
                                            "n_tokens", "text")}
    for i, title, body in zip(batch["article"], batch["title"], batch["body"], strict=True):
        chunks, texts = plan_article(Article(url="", title=str(title), body=str(body)),
                                     embedder, budget, overlap)
        for c, text in zip(chunks, texts, strict=True):
            for key, value in (("article", int(i)), ("ordinal", c.ordinal),
                               ("char_start", c.char_start), ("char_end", c.char_end),
                               ("n_tokens", c.n_tokens), ("text", text)):
                out[key].append(value)
    return out


class EmbedBatches:
    """A Ray Data actor: loads the model once, then embeds one model batch per row."""

    def __init__(self, spec: EmbedderSpec):
        self.embedder = spec.build()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        hashes: list[str] = []
        vectors: list[np.ndarray] = []
        for row_hashes, row_texts in zip(batch["hashes"], batch["texts"], strict=True):
            # one encode call per row, so the model sees exactly the driver's batch
            vectors.append(self.embedder.encode([str(t) for t in row_texts]))
            hashes.extend(str(h) for h in row_hashes)
        return {"hash": np.array(hashes, dtype=object),
                "vector": np.concatenate(vectors).astype(np.float32, copy=False)}


# ---------------------------------------------------------------- on the driver


def model_batches(texts: Sequence[str], size: int) -> list[list[int]]:
    """Units of work of ``size`` texts, longest text first, as sentence-transformers batches
    them on torch. The ONNX runtimes embed each text alone, so for them any split gives the
    same vectors; int8 vectors in a shared batch depended on their batch-mates."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    return [order[s:s + size] for s in range(0, len(order), size)]


def worker_shape(workers: int | None) -> tuple[int, int]:
    """(embedding actors, threads each): by default one single-threaded actor per CPU of
    the cluster; fewer actors get more threads each, at most one node's worth."""
    import ray

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    per_node = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]),
                   default=cpus)
    count = workers or cpus
    if count < 1:
        raise RagError(f"--ray-workers must be at least 1, not {count}")
    return count, max(1, min(per_node, cpus // count))


def _check_reachable(address: str) -> None:
    """A plain HOST:PORT (a cluster's GCS) that nothing answers on makes ``ray.init`` retry
    for minutes; fail in seconds instead. ``auto`` and ``ray://`` fail fast by themselves."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise RagError(f"cannot connect to Ray at {address!r}: {exc}") from exc


@contextmanager
def ray_session(address: str | None) -> Iterator[bool]:
    """Ray for the block: a new local instance when ``address`` is None, else that cluster
    (``auto``, ``ray://host:10001``, ...). A Ray this process already runs (a test's, a
    notebook's) is used as it is. Yields whether this call started it; only then is it
    shut down afterwards."""
    import ray

    if ray.is_initialized():
        yield False
        return
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        _start_local_ray(quiet)
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise RagError(f"cannot connect to Ray at {address!r}: {exc}") from exc
    try:
        yield True
    finally:
        ray.shutdown()


LOCAL_RAY_ATTEMPTS = 3  # a second timed-out start was seen in CI too
LOCAL_RAY_LOGS = "/tmp/ray/session_latest/logs"  # Ray's default temp dir


def _start_local_ray(quiet: dict[str, Any]) -> None:
    """A new single-machine Ray. Its start gives up when the node has not registered within a
    fixed 30 s (seen twice in CI, on a loaded machine) and then leaves the processes it had
    started running; those are stopped and the start is tried again, up to
    ``LOCAL_RAY_ATTEMPTS`` starts in all. Waiting for the GCS server has its own timeout,
    raised to 120 s unless RAY_gcs_server_port_wait_time_s says otherwise."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a local Ray never phones home
    # its GCS server gets 30 s to publish its port, by default: on a loaded machine (here,
    # beside a 10 GB benchmark) all three starts of a test ran out of it; Ray's own override
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "120")
    for attempt in range(1, LOCAL_RAY_ATTEMPTS + 1):
        try:
            ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)),
                     include_dashboard=False, **quiet)
            return
        except Exception as exc:  # Ray raises a bare Exception for this
            _stop_half_started_node(exc)
            ray.shutdown()
            if attempt == LOCAL_RAY_ATTEMPTS:
                raise RagError(f"could not start a local Ray ({attempt} attempts): {exc} "
                               f"(Ray's logs: {LOCAL_RAY_LOGS})") from exc


def _stop_half_started_node(exc: BaseException) -> None:
    """Stop what a failed ``ray.init`` started: the node object that owns the processes
    never reached Ray's globals, so ``ray.shutdown`` cannot see it; it is found in the
    failed constructor's frame."""
    from ray._private.node import Node

    tb = exc.__traceback__
    while tb is not None:
        node = tb.tb_frame.f_locals.get("self")
        if isinstance(node, Node):
            # gracefully, as ray.shutdown does; the raylet's agents can outlive it
            node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
            _stop(_session_processes(node.get_session_dir_path()))
            return
        tb = tb.tb_next


def _session_processes(session_dir: str) -> list[Any]:
    """Ray's processes still holding a file of the session's (their output, redirected to
    its logs): agents the raylet starts while it is being stopped outlive it."""
    import psutil

    prefix = session_dir.rstrip("/") + "/"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if not (cmdline and cmdline[0].startswith("ray::")
                    or any("/ray/" in arg for arg in cmdline)):
                continue
            if any(f.path.startswith(prefix) for f in proc.open_files()):
                found.append(proc)
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    return found


def _stop(processes: list[Any], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL for those still running after ``grace_s``."""
    import psutil

    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)


@contextmanager
def _quiet_ray_data() -> Iterator[Any]:
    """Our progress callback replaces Ray Data's bars and its per-dataset INFO lines."""
    import ray.data

    with warnings.catch_warnings():  # Ray 2.60 warns about its own defaults when it builds one
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start)
    logger = logging.getLogger("ray.data")
    level = logger.level
    ctx.enable_progress_bars, ctx.print_on_execution_start = False, False
    logger.setLevel(logging.ERROR)
    try:
        yield ray.data
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start = saved
        logger.setLevel(level)


def _plan(articles: Sequence[Article], spec: EmbedderSpec, budget: int,
          overlap: int) -> list[tuple[list[Chunk], list[str]]]:
    """``plan_article`` for every article, on the cluster (one Ray task per few articles)."""
    with _quiet_ray_data() as data:
        items = [{"article": i, "title": a.title, "body": a.body} for i, a in enumerate(articles)]
        blocks = -(-len(items) // ARTICLES_PER_TASK)
        ds = data.from_items(items, override_num_blocks=blocks).map_batches(
            plan_batch, fn_kwargs={"spec": spec, "budget": budget, "overlap": overlap},
            batch_size=ARTICLES_PER_TASK, batch_format="numpy", num_cpus=1)
        rows: list[list[tuple[int, int, int, int, str]]] = [[] for _ in articles]
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for i, o, a, b, n, t in zip(batch["article"], batch["ordinal"], batch["char_start"],
                                        batch["char_end"], batch["n_tokens"], batch["text"],
                                        strict=True):
                rows[int(i)].append((int(o), int(a), int(b), int(n), str(t)))
    planned = []
    for article, chunk_rows in zip(articles, rows, strict=True):
        chunk_rows.sort()
        chunks = [Chunk(o, a, b, article.body[a:b], n) for o, a, b, n, _ in chunk_rows]
        planned.append((chunks, [t for *_, t in chunk_rows]))
    return planned


def _embed(groups: Sequence[Group], spec: EmbedderSpec, workers: int,
           batch_size: int = BATCH_SIZE) -> Iterator[tuple[list[str], np.ndarray]]:
    """(hashes, vectors) as the actors return them, in whatever order they finish."""
    rows = []
    for group in groups:
        hashes, texts = list(group.new), list(group.new.values())
        for idx in model_batches(texts, batch_size):
            rows.append({"hashes": [hashes[i] for i in idx], "texts": [texts[i] for i in idx]})
    if not rows:
        return
    with _quiet_ray_data() as data:
        # a block per model batch, so any idle actor can take the next one
        ds = data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            EmbedBatches, fn_constructor_kwargs={"spec": spec}, batch_size=1,
            batch_format="numpy", compute=data.ActorPoolStrategy(size=min(workers, len(rows))),
            num_cpus=spec.threads)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            yield [str(h) for h in batch["hash"]], np.array(batch["vector"], dtype=np.float32)


def ingest_with_ray(index: Index, embedder: Embedder, spec: EmbedderSpec,
                    articles: Sequence[Article], rejected: Sequence[RejectedInput] = (), *,
                    chunk_tokens: int, chunk_overlap: int, commit_every: int = 64,
                    address: str | None = None, prune: bool = False,
                    progress: Progress | None = None,
                    workers: int | None = None) -> IngestReport:
    """The local ingest (rag/ingest/pipeline.py) with chunking and embedding on Ray (see the
    module docstring): the same write loop, fed by the cluster. ``address`` None starts Ray
    locally for the call (and only when something needs chunking); ``workers`` is the number
    of embedding actors (default: one per CPU)."""
    name = spec.build().name
    if name != embedder.name:
        raise RagError(f"Ray workers would embed with {name!r} (RAG_MODEL, RAG_RUNTIME) but "
                       f"this index is written with {embedder.name!r}")
    budget = chunk_budget(embedder, chunk_tokens, chunk_overlap)
    report = IngestReport(rejected=list(rejected))
    todo = triage(index, articles, report)

    if not todo and progress:
        progress(0, 0)
    if todo:
        with ray_session(address):
            count, threads = worker_shape(workers)
            planned = _plan(todo, spec, budget, chunk_overlap)
            embed = functools.partial(_embed, spec=replace(spec, threads=threads),
                                      workers=count)
            write_groups(index, report, todo, planned, name, commit_every, embed, progress)

    return finish(index, articles, report, prune)
