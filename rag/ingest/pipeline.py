"""The write path: articles -> chunks -> embeddings (cached by content hash) -> index.

Unchanged articles cost one hash comparison; a changed article's old chunks are replaced in
the same transaction that adds its new ones; texts whose embedding is already stored are
never embedded again. Work is committed every ``commit_every`` articles, so a crash loses at
most the batch in flight and never leaves half an article.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.core.documents import Article, Chunk
from rag.core.errors import DiskFull, InvalidRequest, RagError, RejectedInput, StorageError
from rag.embedding import Embedder
from rag.index.base import DocumentWrite, Index
from rag.text.chunking import chunk_text

# The title is prepended to the text that is embedded (never to the stored passage), cut to
# this many tokens; its tokens come off its article's chunk budget, so the two always fit.
TITLE_TOKENS = 32

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed in total)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rejected: list[RejectedInput] = field(default_factory=list)
    chunks_written: int = 0
    texts_embedded: int = 0
    texts_cached: int = 0
    generation: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {"added": len(self.added), "updated": len(self.updated),
                "unchanged": len(self.unchanged), "deleted": len(self.deleted),
                "rejected": len(self.rejected), "chunks_written": self.chunks_written,
                "texts_embedded": self.texts_embedded, "texts_cached": self.texts_cached}


def chunk_budget(embedder: Embedder, chunk_tokens: int, chunk_overlap: int = 0) -> int:
    """The most tokens a chunk may have: ``chunk_tokens``, at most what the model reads. An
    article's chunks get less when its title needs the room (``article_budget``)."""
    if chunk_tokens > embedder.max_tokens:
        raise InvalidRequest(
            f"chunk_tokens={chunk_tokens} is more than model {embedder.name!r} reads "
            f"({embedder.max_tokens} tokens); use at most {embedder.max_tokens}")
    smallest = min(chunk_tokens, embedder.max_tokens - TITLE_TOKENS)
    if chunk_overlap >= smallest:
        raise InvalidRequest(
            f"chunk_overlap={chunk_overlap} must be smaller than the smallest chunk budget, "
            f"{smallest} tokens (chunk_tokens={chunk_tokens}, or the model's "
            f"{embedder.max_tokens} minus {TITLE_TOKENS} for a long title)")
    return chunk_tokens


def article_budget(embedder: Embedder, budget: int, title: str) -> int:
    """A chunk and its (truncated) title fit what the model reads: the title's tokens come
    off the budget, so an article with a short title gets longer chunks."""
    used = embedder.count_tokens([title])[0] if title else 0
    return min(budget, embedder.max_tokens - used)


def embed_text(title: str, passage: str) -> str:
    """What the model sees for a chunk: the (truncated) title, then the passage."""
    return f"{title}\n{passage}" if title else passage


def text_hash(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()[:32]


def plan_article(article: Article, embedder: Embedder, budget: int,
                 overlap: int) -> tuple[list[Chunk], list[str]]:
    title = embedder.truncate(article.title, TITLE_TOKENS) if article.title else ""
    chunks = chunk_text(article.body, embedder.count_tokens,
                        article_budget(embedder, budget, title), overlap)
    return chunks, [embed_text(title, c.text) for c in chunks]


def ingest(index: Index, embedder: Embedder, articles: Sequence[Article], *,
           chunk_tokens: int, chunk_overlap: int, rejected: Sequence[RejectedInput] = (),
           prune: bool = False, commit_every: int = 64,
           progress: Progress | None = None) -> IngestReport:
    """Bring the index in line with ``articles``; see the module docstring."""
    budget = chunk_budget(embedder, chunk_tokens, chunk_overlap)
    report = IngestReport(rejected=list(rejected))
    todo = triage(index, articles, report)
    planned = [plan_article(a, embedder, budget, chunk_overlap) for a in todo]

    def embed(groups: Sequence[Group]) -> Iterator[tuple[list[str], np.ndarray]]:
        for group in groups:  # in order: each group is committed as soon as it is embedded
            if group.new:
                yield list(group.new), embedder.encode(list(group.new.values()))

    write_groups(index, report, todo, planned, embedder.name, commit_every, embed, progress)
    return finish(index, articles, report, prune)


def triage(index: Index, articles: Sequence[Article], report: IngestReport) -> list[Article]:
    """Record each article as unchanged, updated or added; return those to (re)write."""
    known = index.content_hashes()
    todo: list[Article] = []
    for article in articles:
        old = known.get(article.url)
        if old == article.content_hash():
            report.unchanged.append(article.url)
        else:
            (report.updated if old else report.added).append(article.url)
            todo.append(article)
    return todo


def finish(index: Index, articles: Sequence[Article], report: IngestReport,
           prune: bool) -> IngestReport:
    """``--prune`` (unless an input was rejected, or the inputs held no article at all: an
    empty or unmounted directory must not empty the index), then persist the vectors (also
    when an earlier run committed articles but was stopped before it saved them)."""
    if prune:
        if report.rejected:
            report.notes.append(f"--prune skipped: {len(report.rejected)} input(s) were "
                                "rejected, and their articles must not be deleted by mistake")
        elif not articles:
            report.notes.append("--prune skipped: the inputs held no articles (an empty or "
                                "unmounted directory?); nothing was deleted")
        else:
            present = {a.url for a in articles}
            report.deleted = [u for u in index.urls() if u not in present]
            if report.deleted:
                report.generation = index.delete(report.deleted)
    if report.generation or index.vectors_stale():
        saved = save_after_commit(index)
        if saved is not None:
            report.notes.append(saved)
    return report


def save_after_commit(index: Index) -> str | None:
    """Save the derived vectors after a committed write. A failure (a full disk) does not undo
    the write: it is reported, and the vectors are caught up again on the next open or
    write. Returns the note to report, or None when saved."""
    try:
        index.save_vectors()
    except (DiskFull, StorageError) as exc:
        return (f"the articles are committed, but the vectors were not saved ({exc}); they "
                "are brought up to date again on the next open or write")
    return None


@dataclass
class Group:
    """One commit's worth of articles, and the texts embedded for them."""

    writes: list[DocumentWrite]
    new: dict[str, str] = field(default_factory=dict)  # hash -> text embedded with this group


Embed = Callable[[Sequence[Group]], Iterable[tuple[list[str], np.ndarray]]]


def write_groups(index: Index, report: IngestReport, todo: Sequence[Article],
                 planned: Sequence[tuple[list[Chunk], list[str]]], model: str,
                 commit_every: int, embed: Embed, progress: Progress | None) -> None:
    """The one write loop (local and Ray): group the articles ``commit_every`` at a time,
    have ``embed`` embed what the index lacks (it yields (hashes, vectors) in any order, as
    they are done), and commit each group, in order, as soon as its vectors are all back."""
    hashes = [[text_hash(model, t) for t in texts] for _, texts in planned]
    cached = index.cached_embeddings(h for hs in hashes for h in hs)
    missing = {h for hs in hashes for h in hs if h not in cached}
    groups: list[Group] = []
    for start in range(0, len(todo), commit_every):
        group = Group([DocumentWrite(a, chunks, hs) for a, (chunks, _), hs in zip(
            todo[start:start + commit_every], planned[start:start + commit_every],
            hashes[start:start + commit_every], strict=True)])
        for (_, texts), hs in zip(planned[start:start + commit_every],
                                  hashes[start:start + commit_every], strict=True):
            for h, t in zip(hs, texts, strict=True):
                if h in missing and h not in group.new:
                    group.new[h] = t
        missing.difference_update(group.new)
        groups.append(group)
    total = sum(len(g.new) for g in groups)
    done = written = 0
    if progress:
        progress(0, total)
    arrived: dict[str, np.ndarray] = {}

    def commit_ready() -> None:
        nonlocal written
        while written < len(groups) and all(h in arrived for h in groups[written].new):
            group = groups[written]
            fresh = {h: arrived.pop(h) for h in group.new}
            report.texts_embedded += len(fresh)
            report.texts_cached += sum(len(w.embed_hashes) for w in group.writes) - len(fresh)
            report.chunks_written += sum(len(w.chunks) for w in group.writes)
            report.generation = index.write(group.writes, fresh)
            written += 1

    commit_ready()
    for got, vectors in embed(groups):
        arrived.update(zip(got, vectors, strict=True))
        done += len(got)
        if progress:
            progress(done, total)
        commit_ready()
    if written < len(groups):
        raise RagError(f"the embedders returned {done} of {total} embeddings; "
                       f"{len(groups) - written} group(s) of articles were not written")
