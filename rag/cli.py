"""Command-line edge: `rag ingest | query | serve | stats`. Heavy imports happen inside commands."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from rag.errors import RagError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Cited retrieval and question answering over news articles.")

IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index directory [RAG_INDEX_DIR, "
                                               "default ./index].")]


def settings(**overrides: Any):
    from rag.config import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(fn):
    """Turn domain errors into a one-line message and a non-zero exit."""
    try:
        return fn()
    except RagError as exc:
        fail(str(exc))
    except Exception as exc:
        # Milvus unreachable or refusing (pymilvus re-raises some gRPC errors as they are)
        if type(exc).__module__.startswith(("pymilvus", "grpc")):
            fail(f"Milvus: {getattr(exc, 'message', None) or exc}")
        if not isinstance(exc, sqlite3.Error | OSError):
            raise
        from rag.storage import storage_error

        mapped = storage_error(exc, Path(os.environ.get("RAG_INDEX_DIR", "index")))
        fail(str(mapped) if mapped is not None else f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        fail("interrupted", 130)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories of articles.")],
    index: IndexOpt = None,
    prune: Annotated[bool, typer.Option(help="Delete indexed articles not found in PATHS.")]
    = False,
    rebuild: Annotated[bool, typer.Option(help="Start a new index (other model or chunking).")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        "--ray", metavar="ADDRESS", help="Chunk and embed on Ray (writes stay here): `local` "
        "starts Ray on this machine for the run; `auto` or ray://HOST:10001 uses that "
        "cluster, whose nodes need this project installed.")] = None,
    ray_workers: Annotated[int | None, typer.Option(
        min=1, help="With --ray: embedding workers (default: one per CPU of the cluster).")]
    = None,
) -> None:
    """Add or update articles; unchanged ones cost nothing. Exits 1 if anything was rejected."""

    def run() -> int:
        from rag.embedding import make_embedder
        from rag.store import IndexParams, Store

        if ray_workers is not None and ray_address is None:
            fail("--ray-workers needs --ray")
        cfg = settings(index_dir=index)
        embedder = make_embedder(cfg.model, device=cfg.device, threads=cfg.thread_count(),
                                 batch_size=cfg.batch_size, backend=cfg.runtime)
        if rebuild and cfg.backend == "milvus":
            from rag.milvus_store import MilvusStore

            MilvusStore.drop(cfg.milvus_location(), cfg.milvus_token)
        with ExitStack() as stack:
            if rebuild and cfg.backend != "milvus":  # into a new directory, swapped in at the end
                fresh = stack.enter_context(Store.rebuilding(cfg.index_dir, IndexParams(
                    embedder.name, embedder.dim, cfg.chunk_tokens, cfg.chunk_overlap)))
                cfg = cfg.model_copy(update={"index_dir": fresh})
            report = _ingest(cfg, embedder)
        return _report(report)

    def _ingest(cfg, embedder):
        from tqdm import tqdm

        from rag.service import Service

        svc = Service.open(cfg, create=True, for_writing=True, embedder=embedder)
        bar = tqdm(desc="embedding", unit="chunk", disable=None, file=sys.stderr, total=0)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            if ray_address is None:
                return svc.ingest_paths(paths, prune=prune, progress=progress)
            from rag.distributed import ingest_paths_with_ray

            return ingest_paths_with_ray(
                svc, paths, address=None if ray_address == "local" else ray_address,
                prune=prune, progress=progress, workers=ray_workers)
        finally:
            bar.close()
            svc.store.shutdown()

    def _report(report) -> int:
        for rejection in report.rejected:
            typer.echo(f"rejected: {rejection}", err=True)
        for note in report.notes:
            typer.echo(f"note: {note}", err=True)
        summary = report.summary()
        if as_json:
            typer.echo(json.dumps(summary))
        else:
            typer.echo(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary.items()))
        return 1 if report.rejected else 0

    raise typer.Exit(_run(run))


@app.command()
def query(
    question: Annotated[str, typer.Argument(help="A natural-language question.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Passages to return.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keyword.")] = "hybrid",
    author: Annotated[list[str] | None, typer.Option(help="Only this author (repeatable).")]
    = None,
    source: Annotated[list[str] | None, typer.Option(help="Only this publisher or domain.")]
    = None,
    after: Annotated[str | None, typer.Option(help="Published on or after YYYY-MM-DD.")] = None,
    before: Annotated[str | None, typer.Option(help="Published on or before YYYY-MM-DD.")]
    = None,
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the HTTP response shape.")]
    = False,
) -> None:
    """Ask a question; print the top passages with their citations."""

    def run() -> None:
        from dataclasses import asdict

        from rag.documents import MAX_FILTER_CHARS, Filters
        from rag.retriever import MODES
        from rag.service import Service

        if not question.strip():
            fail("question is empty")
        if mode not in MODES:
            fail(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
        for flag, names in (("--author", author), ("--source", source)):
            for name in names or ():
                if len(name) > MAX_FILTER_CHARS:
                    fail(f"{flag} is {len(name):,} characters; the limit is {MAX_FILTER_CHARS}")
        filters = Filters(authors=tuple(author or ()), sources=tuple(source or ()),
                          published_after=_date(after, "--after"),
                          published_before=_date(before, "--before"))
        svc = Service.open(settings(index_dir=index))
        result = svc.ask(question.strip(), k=k, mode=mode, filters=filters)  # type: ignore[arg-type]
        if as_json:
            typer.echo(json.dumps(asdict(result), indent=2, ensure_ascii=False))
            return
        if not result.passages:
            typer.echo("No passages found.")
        typer.echo(f"Answer: {result.answer.text}\n" if result.answer
                   else "Answer: not found in the indexed articles.\n")
        for p in result.passages:
            who = f" — {p.author}" if p.author else ""
            typer.echo(f"[{p.rank}] {p.title}{who} ({p.source}, {p.published_date or 'n.d.'})")
            typer.echo(f"    {p.url}  chars {p.char_start}-{p.char_end}  score {p.score:.3f}")
            typer.echo(f"    {_shorten(p.highlight.text if p.highlight else p.text, 300)}\n")

    _run(run)


def _date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{flag} {value!r} is not a date (YYYY-MM-DD)")
    return None


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [RAG_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [RAG_PORT].")] = None,
    index: IndexOpt = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Server processes on the port [RAG_WORKERS, default 1]; each holds its "
        "own model and indexes.")] = None,
    create: Annotated[bool, typer.Option(
        "--create", help="Create an empty index if there is none (else a missing index is "
        "an error).")] = False,
) -> None:
    """Serve the HTTP API (POST /query, GET /documents/{id}, /health, /stats)."""

    def run() -> None:
        import uvicorn

        from rag.api import create_app
        from rag.service import Service

        cfg = settings(index_dir=index, host=host, port=port, workers=workers)
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        # open here, so a bad index fails with one clear line instead of inside uvicorn
        svc = Service.open(cfg, create=create, serving=True)
        if cfg.workers == 1:
            uvicorn.run(create_app(cfg, service=svc), host=cfg.host, port=cfg.port,
                        log_level="info")
            return
        svc.store.close()
        # worker processes build their app from the environment: pass the flags on
        os.environ.update({"RAG_INDEX_DIR": str(cfg.index_dir), "RAG_HOST": cfg.host,
                           "RAG_PORT": str(cfg.port)})
        uvicorn.run("rag.api:app_from_environment", factory=True, workers=cfg.workers,
                    host=cfg.host, port=cfg.port, log_level="info")

    _run(run)


@app.command(name="eval")
def evaluate(
    gold: Annotated[Path, typer.Argument(help="MultiHop-RAG queries.json or a gold JSONL file.")],
    index: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Cut-off for recall.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keyword.")] = "hybrid",
    out: Annotated[Path | None, typer.Option(help="Write report.json and report.png here.")]
    = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
) -> None:
    """Run every gold question through the retriever; print the metrics table."""

    def run() -> None:
        from tqdm import tqdm

        from rag import evaluate as ev
        from rag.retriever import MODES
        from rag.service import Service

        if mode not in MODES:
            fail(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
        questions = ev.load_gold(gold)[:limit]
        svc = Service.open(settings(index_dir=index))
        svc.retriever.embed_query("warm up")  # load the model before the clock starts
        with tqdm(total=len(questions), desc="questions", unit="q", file=sys.stderr,
                  disable=None) as bar:
            report = ev.run(lambda q, n: svc.ask(q, k=n, mode=mode), questions, k=k,  # type: ignore[arg-type]
                            progress=bar.update)
        report["settings"] = {"gold": str(gold), "mode": mode, "k": k, **svc.stats()}
        typer.echo(ev.table(report))
        if out:
            out.mkdir(parents=True, exist_ok=True)
            (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
            ev.plot(report, out / "report.png")
            typer.echo(f"wrote {out / 'report.json'} and {out / 'report.png'}")

    _run(run)


@app.command()
def stats(index: IndexOpt = None,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          check: Annotated[bool, typer.Option(help="Also check the index's consistency; exit "
                                                   "1 listing the problems if any.")] = False,
          ) -> None:
    """Counts, model and chunking parameters of an index."""

    def run() -> int:
        from rag.service import Service

        svc = Service.open(settings(index_dir=index))
        figures = svc.stats()
        problems = svc.store.problems() if check else []
        if check:
            figures["consistent"] = not problems
        if as_json:
            typer.echo(json.dumps({**figures, "problems": problems} if check else figures,
                                  indent=2))
        else:
            for key, value in figures.items():
                typer.echo(f"{key:>15}  {value}")
            for problem in problems:
                typer.echo(f"problem: {problem}", err=True)
        return 1 if problems else 0

    raise typer.Exit(_run(run) or 0)


@app.command()
def migrate(
    index: IndexOpt = None,
    to: Annotated[str | None, typer.Option(help="Milvus URI: a file path (Milvus Lite) or "
                                                "http://host:19530; default RAG_MILVUS_URI.")]
    = None,
) -> None:
    """Copy an embedded index into Milvus without re-embedding (then use RAG_BACKEND=milvus)."""

    def run() -> int:
        from tqdm import tqdm

        from rag.migrate import migrate as copy
        from rag.milvus_store import MilvusStore
        from rag.store import IndexParams, Store

        cfg = settings(index_dir=index)
        uri = to or cfg.milvus_uri
        if not uri:
            fail("say where to: --to PATH_OR_URL (or set RAG_MILVUS_URI)")
        source = Store.open(cfg.index_dir)
        meta = source.meta()
        params = IndexParams(meta["model"], int(meta["dim"]), int(meta["chunk_tokens"]),
                             int(meta["chunk_overlap"]))
        target = MilvusStore.open(uri, params, create=True, check_chunking=True,
                                  token=cfg.milvus_token)
        bar = tqdm(desc="copying", unit="article", disable=None, file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        try:
            n = copy(source, target, progress)
        finally:
            bar.close()
        counts = target.counts()
        typer.echo(f"copied {n} articles into {uri}: {counts['documents']} documents, "
                   f"{counts['chunks']} chunks (no text re-embedded)")
        return 0

    raise typer.Exit(_run(run) or 0)


if __name__ == "__main__":
    app()
