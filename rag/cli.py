"""Command-line edge: `rag ingest | query | serve | eval | mcp | stats | migrate`.

Each command parses its flags, builds the Settings, calls the service and formats the result;
heavy imports happen inside commands, so `rag --help` is instant. A domain error is one line
on stderr and exit 2; an ingest with rejected inputs exits 1.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rag.core.errors import RagError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Cited retrieval and question answering over news articles.")
T = TypeVar("T")


class ModeChoice(StrEnum):
    hybrid = "hybrid"
    dense = "dense"
    keyword = "keyword"


IndexOpt = Annotated[Path | None, typer.Option(
    "--index", metavar="DIR", show_default=False,
    help="Index directory (RAG_INDEX_DIR; default: ./index).")]
ModeOpt = Annotated[ModeChoice, typer.Option(
    case_sensitive=False, help="Ranking: hybrid (dense + BM25, fused), dense or keyword.")]


def settings(**overrides: Any):
    """Flags, then RAG_* variables, then defaults; a RAG_* variable that names no setting is
    warned about (a misspelt one would otherwise be ignored)."""
    from pydantic import ValidationError

    from rag.core.config import Settings, unknown_variables

    for name in unknown_variables():
        typer.echo(f"warning: {name} is not a setting (see docs/configuration.md)", err=True)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:  # a flag or a RAG_* variable out of range or malformed
        fail("; ".join(f"{_setting_name(e['loc'], overrides)}: {e['msg']}"
                       for e in exc.errors()))


def _setting_name(loc: tuple, flags: dict[str, Any]) -> str:
    """A setting as the user gave it: the flag's name, or the RAG_* variable's."""
    name = str(loc[0]) if loc else "settings"
    if flags.get(name) is not None:
        return "--" + name.replace("_", "-")
    return "RAG_" + name.upper()


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(fn: Callable[[], T]) -> T | None:
    """Turn domain errors into a one-line message and a non-zero exit."""
    try:
        return fn()
    except RagError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    return None


def _quiet_libraries() -> None:
    """Library start-up chatter off stderr (faiss's loader reports the CPU builds it tries as
    ModuleNotFoundError lines at INFO); their warnings and errors still show."""
    for name in ("faiss", "faiss.loader"):
        logging.getLogger(name).setLevel(logging.WARNING)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", show_default=False,
                                                help="Files or directories of articles.")],
    index: IndexOpt = None,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Delete indexed articles not found in PATH... (skipped if any input "
        "is rejected).")] = False,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Build a new index from PATH... (another model or chunking) and "
        "swap it in when complete; the old one serves until then (with RAG_BACKEND=milvus "
        "its collections are dropped first).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        "--ray", metavar="ADDRESS", help="Chunk and embed on Ray (writes stay here): `local` "
        "starts Ray on this machine for the run; `auto` or ray://HOST:10001 uses that "
        "cluster, whose nodes need this project installed. Needs the `ray` extra.")] = None,
    ray_workers: Annotated[int | None, typer.Option(
        min=1, metavar="N", help="With --ray: embedding workers (default: one per CPU of the "
        "cluster).")] = None,
) -> None:
    """Add or update articles; unchanged ones cost nothing. Exits 1 if anything was rejected."""

    def run() -> int:
        from contextlib import ExitStack

        from tqdm import tqdm

        from rag.embedding import make_embedder
        from rag.service import Service

        if ray_workers is not None and ray_address is None:
            fail("--ray-workers needs --ray")
        missing = [p for p in paths if not p.exists()]
        if missing and len(missing) == len(paths):  # nothing to read: create nothing either
            fail("no such file or directory: " + ", ".join(map(str, missing)))
        cfg = settings(index_dir=index)
        _quiet_libraries()
        embedder = make_embedder(cfg.model, runtime=cfg.runtime, threads=cfg.thread_count())
        bar = tqdm(desc="embedding", unit="chunk", disable=None, file=sys.stderr, total=0)

        def progress(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        with ExitStack() as stack:
            stack.callback(bar.close)
            if rebuild:
                svc = stack.enter_context(Service.rebuilding(cfg, embedder))
            else:
                svc = Service.open(cfg, create=True, for_writing=True, embedder=embedder)
                stack.callback(svc.close)
            report = svc.ingest_paths(paths, prune=prune, progress=progress, ray=ray_address,
                                      ray_workers=ray_workers)
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

    raise typer.Exit(_run(run) or 0)


@app.command()
def query(
    question: Annotated[str, typer.Argument(metavar="QUESTION", show_default=False,
                                            help="A natural-language question.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, metavar="N",
                                   help="Passages to return.")] = 5,
    mode: ModeOpt = ModeChoice.hybrid,
    author: Annotated[list[str] | None, typer.Option(
        metavar="NAME", help="Only articles by this author (repeatable).")] = None,
    source: Annotated[list[str] | None, typer.Option(
        metavar="NAME", help="Only this publisher or domain (repeatable).")] = None,
    after: Annotated[str | None, typer.Option(
        metavar="YYYY-MM-DD", help="Published on or after this day.")] = None,
    before: Annotated[str | None, typer.Option(
        metavar="YYYY-MM-DD", help="Published on or before this day.")] = None,
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the HTTP response shape.")]
    = False,
) -> None:
    """Ask a question; print the answer and the top passages with their citations."""

    def run() -> None:
        from dataclasses import asdict

        from rag.core.documents import MAX_FILTER_CHARS, Filters, has_visible_text, is_unicode
        from rag.service import Service

        if not has_visible_text(question):
            fail("question is empty")
        if not is_unicode(question):
            fail("question is not valid text (it holds bytes that are not UTF-8)")
        for flag, names in (("--author", author), ("--source", source)):
            for name in names or ():
                if len(name) > MAX_FILTER_CHARS:
                    fail(f"{flag} is {len(name):,} characters; the limit is {MAX_FILTER_CHARS}")
        filters = Filters(authors=tuple(author or ()), sources=tuple(source or ()),
                          published_after=_date(after, "--after"),
                          published_before=_date(before, "--before"))
        _quiet_libraries()
        svc = Service.open(settings(index_dir=index))
        result = svc.ask(question.strip(), k=k, mode=mode.value, filters=filters)
        if as_json:
            typer.echo(json.dumps(asdict(result), indent=2, ensure_ascii=False))
            return
        if not result.passages:
            typer.echo("Not found in the indexed articles.")
        elif result.answer:
            typer.echo(f"Answer: {result.answer.text}\n")
        else:
            typer.echo("No sentence answers this directly; closest passages:\n")
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
    host: Annotated[str | None, typer.Option(
        metavar="ADDRESS", help="Bind address (RAG_HOST; default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (RAG_PORT; default 8000).")] = None,
    index: IndexOpt = None,
    workers: Annotated[int | None, typer.Option(
        min=1, metavar="N", help="Server processes on the port (RAG_WORKERS; default 1); each "
        "holds its own model and indexes.")] = None,
    create: Annotated[bool, typer.Option(
        "--create", help="Create an empty index if there is none (else a missing index is "
        "an error).")] = False,
) -> None:
    """Serve the HTTP API, the chat page and the MCP endpoint."""

    def run() -> None:
        import uvicorn

        from rag.server.app import create_app, log_config
        from rag.service import Service

        cfg = settings(index_dir=index, host=host, port=port, workers=workers)
        _quiet_libraries()
        # open here, so a bad index fails with one clear line instead of inside uvicorn
        svc = Service.open(cfg, create=create, serving=True)
        if cfg.workers == 1:
            uvicorn.run(create_app(cfg, service=svc), host=cfg.host, port=cfg.port,
                        log_config=log_config(), access_log=False)
            return
        svc.close()
        # worker processes build their app from the environment: pass the flags on
        os.environ.update({"RAG_INDEX_DIR": str(cfg.index_dir), "RAG_HOST": cfg.host,
                           "RAG_PORT": str(cfg.port)})
        uvicorn.run("rag.server.app:app_from_environment", factory=True, workers=cfg.workers,
                    host=cfg.host, port=cfg.port, log_config=log_config(), access_log=False)

    _run(run)


@app.command()
def mcp(index: IndexOpt = None) -> None:
    """Serve the MCP tools (search, fetch) over stdio, for an agent that starts this command."""

    def run() -> None:
        from rag.server.mcp import build
        from rag.service import Service

        _quiet_libraries()
        svc = Service.open(settings(index_dir=index), serving=True)
        svc.retriever.embed_query("warm up")  # load the model before the first call
        build(lambda: svc).run("stdio")

    _run(run)


@app.command(name="eval")
def evaluate(
    gold: Annotated[Path, typer.Argument(
        metavar="GOLD", show_default=False,
        help="MultiHop-RAG queries.json, a gold or Ragas JSONL file, or a BEIR folder.")],
    index: IndexOpt = None,
    url: Annotated[str | None, typer.Option(
        "--url", metavar="URL", help="Score a running server (http://HOST:PORT) through its "
        "POST /query instead of an index here.")] = None,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", metavar="KEY", help="With --url: the server's API key (sent as "
        "Authorization: Bearer KEY).")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, metavar="N",
                                   help="Cut-off for recall.")] = 10,
    mode: ModeOpt = ModeChoice.hybrid,
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Write report.json, report.png and report.html here (needs the "
        "`eval` extra).")] = None,
    limit: Annotated[int | None, typer.Option(
        metavar="N", help="Only the first N questions.")] = None,
) -> None:
    """Run every gold question through the retriever (here, or a server's with --url); print
    the metrics table."""

    def run() -> None:
        from tqdm import tqdm

        from rag.evaluation import evaluate as ev
        from rag.evaluation import formats, remote
        from rag.evaluation import report as report_files

        if url is not None and index is not None:
            fail("give --index or --url, not both")
        if api_key is not None and url is None:
            fail("--api-key goes with --url")
        gold_set = formats.load(gold)
        if out is not None:  # what the report needs, checked before the run, not after it
            from rag.core.extras import need

            need("matplotlib", "eval", "rag eval --out (the plots)")
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                why = "it is a file" if out.is_file() else exc.strerror
                fail(f"--out {out}: cannot make the report directory ({why})")
            if not os.access(out, os.W_OK):
                fail(f"--out {out}: the report directory is not writable")
        questions = gold_set.questions[:limit]
        if url is not None:
            ask = remote.asker(url, api_key, mode=mode.value)
            # also checks the server answers (and takes the key) before the first question
            about = {"url": remote.base_url(url), **remote.server_stats(url, api_key)}
            max_depth: int | None = remote.MAX_K
        else:
            from rag.service import Service

            _quiet_libraries()
            svc = Service.open(settings(index_dir=index))
            svc.retriever.embed_query("warm up")  # load the model before the clock starts

            def ask(question: str, n: int) -> Any:
                return svc.ask(question, k=n, mode=mode.value)

            about, max_depth = svc.stats(), None
        with tqdm(total=len(questions), desc="questions", unit="q", file=sys.stderr,
                  disable=None) as bar:
            report = ev.run(ask, questions, k=k, progress=bar.update, max_depth=max_depth)
        report["settings"] = {"gold": str(gold), "format": gold_set.format, "mode": mode.value,
                              "k": k, **about}
        typer.echo(ev.table(report))
        if out:
            for path in report_files.write(report, out):
                typer.echo(f"wrote {path}")

    _run(run)


@app.command()
def stats(index: IndexOpt = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
          check: Annotated[bool, typer.Option(
              "--check", help="Also check the index's consistency; exit 1 listing the "
              "problems if any.")] = False,
          ) -> None:
    """Counts, model and chunking parameters of an index."""

    def run() -> int:
        from rag.service import Service

        _quiet_libraries()
        svc = Service.open(settings(index_dir=index))
        figures: dict[str, Any] = svc.stats()
        problems = svc.problems() if check else []
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
    to: Annotated[str | None, typer.Option(
        metavar="URI", help="Milvus URI: a file path (Milvus Lite) or http://host:19530 "
        "(default: RAG_MILVUS_URI).")] = None,
) -> None:
    """Copy an embedded index into Milvus without re-embedding (then use RAG_BACKEND=milvus)."""

    def run() -> int:
        from tqdm import tqdm

        from rag.service import Service

        cfg = settings(index_dir=index)
        uri = to or cfg.milvus_uri
        if not uri:
            fail("say where to: --to PATH_OR_URL (or set RAG_MILVUS_URI)")
        _quiet_libraries()
        source = Service.open(cfg.model_copy(update={"backend": "embedded"}))
        bar = tqdm(desc="copying", unit="article", disable=None, file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        try:
            n, counts = source.migrate_to(uri, cfg.milvus_token, progress)
        finally:
            bar.close()
            source.close()
        typer.echo(f"copied {n} articles into {uri}: {counts['documents']} documents, "
                   f"{counts['chunks']} chunks (no text re-embedded)")
        return 0

    raise typer.Exit(_run(run) or 0)


if __name__ == "__main__":
    app()
