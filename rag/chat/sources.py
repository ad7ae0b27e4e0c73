"""Citations in the forms chat frontends show.

- ``events``: Open WebUI's source events. Its stream handler forwards to its UI every chunk
  with an ``event`` key (``{"event": {"type": "source", "data": ...}}``, as Hayhooks sends
  them) and lists each as a source; an inline ``[n]`` opens the n-th source in the order they
  arrived, so there is one event per passage, in rank order. A non-streamed reply carries the
  same items in a top-level ``sources`` list, which Open WebUI's UI reads.
- ``markdown``: a short "Sources" list appended to the reply (LibreChat, plain clients).
- ``none``: the ``citations`` field alone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

FRAGMENT_WORDS = 8  # words of the supporting sentence in a link's text fragment


def text_fragment(url: str, sentence: str | None) -> str:
    """``url`` with a text fragment (``#:~:text=``) that scrolls a browser to the start of
    ``sentence`` and highlights it."""
    if not sentence:
        return url
    words = " ".join(sentence.split()[:FRAGMENT_WORDS])
    # percent-encoded, "-" too: in a text directive it separates a prefix or a suffix
    return f"{url.split('#', 1)[0]}#:~:text={quote(words, safe='').replace('-', '%2D')}"


def source_item(citation: dict[str, Any]) -> dict[str, Any]:
    """One citation as Open WebUI's source data: ``document`` and ``metadata`` are parallel
    lists; ``metadata.source`` groups (unique per number, so [n] opens passage n)."""
    highlight = citation.get("highlight") or {}
    link = text_fragment(citation["url"], highlight.get("text"))
    label = f"[{citation['n']}] {citation['title']}"
    return {
        "source": {"name": label, "id": citation["chunk_id"], "url": link},
        "document": [citation["text"]],
        "metadata": [{
            "source": f"{citation['url']}#passage-{citation['n']}", "name": label,
            "url": link, "source_url": link, "title": citation["title"],
            "author": citation["author"], "published_date": citation["published_date"],
            "publisher": citation["source"], "document_id": citation["document_id"],
            "chunk_id": citation["chunk_id"], "char_start": citation["char_start"],
            "char_end": citation["char_end"], "cited": citation["cited"]}]}


def source_events(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stream chunks that make Open WebUI list the citations, in citation order."""
    return [{"event": {"type": "source", "data": source_item(c)}} for c in citations]


def markdown_sources(citations: list[dict[str, Any]]) -> str:
    """A "Sources" list to append to a reply: ``[n] title - author, date - url``."""
    if not citations:
        return ""
    lines = ["", "", "Sources:"]
    for c in citations:
        byline = ", ".join(x for x in (c["author"], c["published_date"]) if x)
        lines.append(f"[{c['n']}] {c['title']}" + (f" - {byline}" if byline else "")
                     + f" - {c['url']}")
    return "\n".join(lines)
