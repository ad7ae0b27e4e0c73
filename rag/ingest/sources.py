"""Source files -> Articles, with a one-line reason for everything rejected.

Formats:
- the seed tagged format (``<TITLE>``, ``<PUBLISHED_DATE>``, ``<URL>``, ``<AUTHOR>``,
  ``<SUMMARY>``, ``<HIGHLIGHTS>``, ``<CONTENT>``), usually ``.txt``;
- JSON (one article object or an array of them) and JSONL, with field aliases;
- Markdown or plain text with YAML front matter (``---`` ... ``---``);
- a BEIR ``corpus.jsonl`` (records with ``_id``, ``title``, ``text`` and no URL): each
  document's URL is the stand-in ``beir_url(_id)``, which ``beir_id`` maps back. A BEIR folder
  (``corpus.jsonl``, ``queries.jsonl``, ``qrels/``) given as a directory is read for its corpus
  only.

A rejected file or record never stops the rest of a batch: parsing returns the good articles
and a list of ``RejectedInput`` errors, each naming its file (and record).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from rag.core.documents import NOT_UNICODE, Article, has_visible_text, is_unicode
from rag.core.errors import RejectedInput

SEED_TAGS = ("TITLE", "PUBLISHED_DATE", "URL", "AUTHOR", "SUMMARY", "HIGHLIGHTS", "CONTENT")
TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown"}
JSON_SUFFIXES = {".json"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
KNOWN_SUFFIXES = TEXT_SUFFIXES | JSON_SUFFIXES | JSONL_SUFFIXES

ALIASES: dict[str, tuple[str, ...]] = {
    "url": ("url", "link", "source_url"),
    "title": ("title", "headline"),
    "body": ("body", "content", "text"),
    "author": ("author", "authors", "byline"),
    "published": ("published_at", "published_date", "date", "published"),
    "source": ("source", "publisher", "site_name"),
    "summary": ("summary", "description"),
    "highlights": ("highlights",),
    "category": ("category",),
}

BEIR_BASE = "https://beir.local/"  # the stand-in URL of a BEIR document is this + its quoted id
BEIR_FOLDER_FILES = ("corpus.jsonl", "queries.jsonl")

MAX_JSON_DEPTH = 32  # nesting of arrays and objects; an article record needs 3
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_JSON_BRACKETS = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (JSON), found without parsing it: the
    parser recurses once per level, and a hostile file of 100,000 brackets exhausts it."""
    brackets = _JSON_BRACKETS.sub("", _JSON_STRING.sub("", text))
    depth = deepest = 0
    for run in re.finditer(r"[\[{]+|[\]}]+", brackets):
        if run.group()[0] in "[{":
            depth += len(run.group())
            deepest = max(deepest, depth)
        else:
            depth -= len(run.group())
    return deepest


def check_json_depth(text: str, origin: str) -> None:
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise RejectedInput(origin, f"JSON nested {depth:,} levels deep; the limit is "
                                    f"{MAX_JSON_DEPTH}")


_TAG = re.compile(r"<(/?)(" + "|".join(SEED_TAGS) + r")>")
_LOOKS_LIKE_TAG = re.compile(r"</?[A-Z][A-Z_]*>")


@dataclass(frozen=True)
class Limits:
    max_article_bytes: int = 5_000_000  # one article's body, and a single-article file
    max_file_bytes: int = 1_000_000_000  # a JSON/JSONL collection file


@dataclass
class ParseResult:
    articles: list[Article] = field(default_factory=list)
    rejected: list[RejectedInput] = field(default_factory=list)

    def extend(self, other: ParseResult) -> None:
        self.articles.extend(other.articles)
        self.rejected.extend(other.rejected)


# ---------------------------------------------------------------- field normalisation


def parse_date(value: Any, origin: str) -> tuple[date | None, str | None]:
    """A date or ISO-8601 timestamp -> (date, original timestamp string or None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if not isinstance(value, str):
        raise RejectedInput(origin, f"published date must be a string, got {type(value).__name__}")
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text), None
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RejectedInput(origin, f"impossible or malformed date {text[:40]!r} "
                                    "(expected YYYY-MM-DD or an ISO-8601 timestamp)") from None
    return stamp.date(), text


# a URL is an article's identity: stored whole by both backends (Milvus holds 4,000 bytes,
# so at most 1,000 characters of any script), never shortened
MAX_URL_CHARS = 1_000


def check_url(value: Any, origin: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RejectedInput(origin, "missing URL (every article needs one: it is its identity)")
    if not isinstance(value, str):
        raise RejectedInput(origin, f"URL must be a string, got {type(value).__name__}")
    url = _unicode(value.strip(), origin, "URL")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced "[" (an invalid IPv6 host)
        host = None
    if host is None or parts.scheme not in ("http", "https") or any(c.isspace() for c in url):
        raise RejectedInput(origin, f"URL {url[:80]!r} is not an absolute http(s) URL")
    if len(url) > MAX_URL_CHARS:
        raise RejectedInput(origin, f"URL is {len(url):,} characters, over the limit of "
                                    f"{MAX_URL_CHARS:,}")
    return url


def _text(value: Any, origin: str, name: str, joiner: str = ", ") -> str | None:
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = joiner.join(v.strip() for v in value if v.strip())
    if not isinstance(value, str):
        raise RejectedInput(origin, f"{name} must be a string, got {type(value).__name__}")
    value = _unicode(value.strip(), origin, name)
    return value or None


def _unicode(value: str, origin: str, name: str) -> str:
    if not is_unicode(value):
        raise RejectedInput(origin, f"{name} {NOT_UNICODE}")
    return value


def build_article(fields: dict[str, Any], origin: str, limits: Limits) -> Article:
    """Validate normalised fields (keys as in ``ALIASES``) into an Article."""
    url = check_url(fields.get("url"), origin)
    body = _text(fields.get("body"), origin, "body", joiner="\n\n")
    if not body:
        raise RejectedInput(origin, "empty body (no article text to index)")
    if not has_visible_text(body):
        raise RejectedInput(origin, "body has no visible text (only white space, control or "
                                    "invisible characters)")
    size = len(body.encode("utf-8"))
    if size > limits.max_article_bytes:
        raise RejectedInput(origin, f"body is {size:,} bytes, over the limit of "
                                    f"{limits.max_article_bytes:,} (RAG_MAX_ARTICLE_BYTES)")
    published, stamp = parse_date(fields.get("published"), origin)
    return Article(
        url=url,
        title=_text(fields.get("title"), origin, "title") or "",
        body=body,
        author=_text(fields.get("author"), origin, "author"),
        published_date=published,
        published_at=stamp,
        source=_text(fields.get("source"), origin, "source"),
        summary=_text(fields.get("summary"), origin, "summary", joiner="\n"),
        highlights=_text(fields.get("highlights"), origin, "highlights", joiner="\n"),
        category=_text(fields.get("category"), origin, "category"),
        origin=origin,
    )


def article_from_record(record: Any, origin: str, limits: Limits = Limits()) -> Article:
    """One JSON object with aliased field names -> Article."""
    if not isinstance(record, dict):
        raise RejectedInput(origin, f"expected an article object, got {type(record).__name__}")
    fields: dict[str, Any] = {}
    for key, names in ALIASES.items():
        for name in names:
            if record.get(name) is not None:
                fields[key] = record[name]
                break
    return build_article(fields, origin, limits)


# ---------------------------------------------------------------- BEIR corpora


def beir_url(doc_id: str) -> str:
    """The absolute URL standing in for BEIR document ``doc_id`` (every character of the id
    percent-quoted, so any id gives one valid URL and ``beir_id`` gives the id back)."""
    return BEIR_BASE + quote(doc_id, safe="")


def beir_id(url: str) -> str | None:
    """The BEIR document id behind a ``beir_url``; None for any other URL."""
    return unquote(url[len(BEIR_BASE):]) if url.startswith(BEIR_BASE) else None


def is_beir_record(record: Any) -> bool:
    """A BEIR corpus record: ``_id`` and ``text``, and no field that names a URL."""
    return (isinstance(record, dict) and "_id" in record and "text" in record
            and not any(record.get(name) is not None for name in ALIASES["url"]))


def beir_article(record: dict[str, Any], origin: str, limits: Limits = Limits()) -> Article:
    """One BEIR corpus record -> Article: URL ``beir_url(_id)``, title, body from ``text``
    (``metadata`` is not read, as BEIR's own loader does not)."""
    doc_id = record["_id"]
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)) or not str(doc_id).strip():
        raise RejectedInput(origin, f"BEIR _id must be a non-empty string, got {doc_id!r:.40}")
    return build_article({"url": beir_url(str(doc_id)), "title": record.get("title"),
                          "body": record.get("text")}, origin, limits)


def is_beir_folder(path: Path) -> bool:
    return all((path / name).is_file() for name in BEIR_FOLDER_FILES) and \
        (path / "qrels").is_dir()


# ---------------------------------------------------------------- formats


def parse_seed(text: str, origin: str, limits: Limits = Limits()) -> Article:
    """The native tagged format: every tag closed, nothing but whitespace between tags."""
    sections: dict[str, str] = {}
    open_tag: str | None = None
    open_end = 0
    cursor = 0
    for m in _TAG.finditer(text):
        closing, name = m.group(1) == "/", m.group(2)
        if open_tag is None:
            stray = text[cursor:m.start()]
            if stray.strip():
                raise RejectedInput(origin, f"text outside any tag near {stray.strip()[:30]!r}")
            if closing:
                raise RejectedInput(origin, f"</{name}> closes a tag that was never opened")
            if name in sections:
                raise RejectedInput(origin, f"<{name}> appears twice")
            open_tag, open_end = name, m.end()
        elif closing and name == open_tag:
            sections[name] = text[open_end:m.start()]
            open_tag = None
            cursor = m.end()
        else:
            raise RejectedInput(origin, f"<{m.group(1)}{name}> found inside unclosed <{open_tag}>")
    if open_tag is not None:
        raise RejectedInput(origin, f"<{open_tag}> is never closed")
    rest = text[cursor:]
    if rest.strip():
        bad = _LOOKS_LIKE_TAG.search(rest)
        what = (f"unknown tag {bad.group(0)}" if bad
                else f"text outside any tag: {rest.strip()[:30]!r}")
        raise RejectedInput(origin, what)
    if "CONTENT" not in sections:
        raise RejectedInput(origin, "no <CONTENT> section (empty body)")
    fields = {
        "url": sections.get("URL"),
        "title": sections.get("TITLE"),
        "body": sections.get("CONTENT"),
        "author": sections.get("AUTHOR"),
        "published": sections.get("PUBLISHED_DATE"),
        "summary": sections.get("SUMMARY"),
        "highlights": sections.get("HIGHLIGHTS"),
    }
    return build_article(fields, origin, limits)


def parse_front_matter(text: str, origin: str, limits: Limits = Limits()) -> Article:
    """Markdown or plain text with YAML front matter holding at least ``url``."""
    import yaml

    m = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", text, re.S)
    if not m:
        raise RejectedInput(origin, "missing URL: plain text needs YAML front matter "
                                    "(---\\nurl: ...\\n---) or the tagged seed format")
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise RejectedInput(origin, f"malformed YAML front matter{where}") from None
    if not isinstance(meta, dict):
        raise RejectedInput(origin, "front matter must be a mapping of fields")
    meta = {str(k): (v.isoformat() if isinstance(v, date) else v) for k, v in meta.items()}
    body = text[m.end():]
    if not meta.get("title"):
        heading = re.search(r"^#\s+(.+)$", body, re.M)
        if heading:
            meta["title"] = heading.group(1).strip()
    meta.setdefault("body", body)
    return article_from_record(meta, origin, limits)


def decode(data: bytes, origin: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1].hex()
        raise RejectedInput(origin, f"not valid UTF-8 (byte 0x{bad} at offset "
                                    f"{exc.start})") from None
    if "\x00" in text:
        raise RejectedInput(origin, "contains NUL characters (binary file?)")
    return text


def _looks_tagged(text: str) -> bool:
    """Any seed tag at the start of a line makes it the tagged format (and its errors)."""
    return re.search(r"^\s*</?(" + "|".join(SEED_TAGS) + r")>", text, re.M) is not None


def parse_bytes(data: bytes, name: str, limits: Limits = Limits()) -> ParseResult:
    """Parse one file's content; ``name`` gives its format (by suffix) and its origin label."""
    result = ParseResult()
    suffix = Path(name).suffix.lower()
    try:
        if suffix not in KNOWN_SUFFIXES:
            raise RejectedInput(name, f"not a known format (expected one of "
                                      f"{', '.join(sorted(KNOWN_SUFFIXES))})")
        limit = limits.max_file_bytes if suffix in JSON_SUFFIXES | JSONL_SUFFIXES \
            else limits.max_article_bytes
        if len(data) > limit:
            raise RejectedInput(name, f"file is {len(data):,} bytes, over the limit of {limit:,}")
        text = decode(data, name)
        if suffix in JSON_SUFFIXES:
            result.extend(_parse_json(text, name, limits))
        elif suffix in JSONL_SUFFIXES:
            result.extend(_parse_jsonl(text, name, limits))
        elif _looks_tagged(text):
            result.articles.append(parse_seed(text, name, limits))
        else:
            result.articles.append(parse_front_matter(text, name, limits))
    except RejectedInput as exc:
        result.rejected.append(exc)
    except RecursionError:  # nesting too deep for a parser (YAML front matter)
        result.rejected.append(RejectedInput(name, "nested too deeply to parse"))
    return result


def _records(records: Iterable[tuple[str, Any]], limits: Limits,
             beir: bool = False) -> ParseResult:
    """``beir``: records that look like a BEIR corpus's become articles by ``beir_article``."""
    result = ParseResult()
    for origin, record in records:
        try:
            if beir and is_beir_record(record):
                result.articles.append(beir_article(record, origin, limits))
            else:
                result.articles.append(article_from_record(record, origin, limits))
        except RejectedInput as exc:
            result.rejected.append(exc)
    return result


def _parse_json(text: str, name: str, limits: Limits) -> ParseResult:
    check_json_depth(text, name)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RejectedInput(name, f"malformed JSON at line {exc.lineno} column {exc.colno}: "
                                  f"{exc.msg}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise RejectedInput(name, "JSON must be an article object or an array of them")
    if not data:
        raise RejectedInput(name, "empty JSON array (no articles)")
    return _records(((f"{name}[{i}]", r) for i, r in enumerate(data)), limits)


def _parse_jsonl(text: str, name: str, limits: Limits) -> ParseResult:
    result = ParseResult()
    records = []
    # JSON Lines end at "\n" only: str.splitlines() also splits at U+2028, U+2029 and U+0085,
    # which JSON strings may hold raw (scraped text often does)
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            check_json_depth(line, f"{name}:{lineno}")
            records.append((f"{name}:{lineno}", json.loads(line)))
        except RejectedInput as exc:
            result.rejected.append(exc)
        except json.JSONDecodeError as exc:
            result.rejected.append(RejectedInput(f"{name}:{lineno}", f"malformed JSON: {exc.msg}"))
    if not records and not result.rejected:
        raise RejectedInput(name, "no articles in file")
    result.extend(_records(records, limits, beir=True))
    return result


# ---------------------------------------------------------------- files and directories


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly, and files under directories (recursively, sorted, no dotfiles);
    of a BEIR folder, its ``corpus.jsonl`` (its queries and judgments are not articles)."""
    for path in paths:
        if path.is_dir():
            beir: dict[Path, bool] = {}  # directory -> is it (or is it inside) a BEIR folder
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if not child.is_file() or any(p.startswith(".") for p in rel):
                    continue
                if _in_beir_folder(child.parent, path, beir) and not (
                        child.name == "corpus.jsonl" and is_beir_folder(child.parent)):
                    continue
                yield child
        else:
            yield path


def _in_beir_folder(directory: Path, top: Path, seen: dict[Path, bool]) -> bool:
    if directory not in seen:
        seen[directory] = is_beir_folder(directory) or (
            directory != top and _in_beir_folder(directory.parent, top, seen))
    return seen[directory]


def parse_paths(paths: Iterable[Path], limits: Limits = Limits()) -> ParseResult:
    """Every article under ``paths``; duplicate URLs within the batch are rejected."""
    result = ParseResult()
    for path in iter_files(paths):
        name = str(path)
        try:
            if not path.exists():
                raise RejectedInput(name, "no such file or directory")
            size = path.stat().st_size
            if size > limits.max_file_bytes:
                raise RejectedInput(name, f"file is {size:,} bytes, over the limit of "
                                          f"{limits.max_file_bytes:,}")
            data = path.read_bytes()
        except RejectedInput as exc:
            result.rejected.append(exc)
            continue
        except OSError as exc:
            result.rejected.append(RejectedInput(name, f"cannot read: {exc.strerror}"))
            continue
        result.extend(parse_bytes(data, name, limits))
    return dedupe(result)


def dedupe(result: ParseResult) -> ParseResult:
    seen: dict[str, str] = {}
    out = ParseResult(rejected=list(result.rejected))
    for article in result.articles:
        if article.url in seen:
            out.rejected.append(RejectedInput(article.origin, f"duplicate URL {article.url} "
                                                              f"(already in {seen[article.url]})"))
        else:
            seen[article.url] = article.origin
            out.articles.append(article)
    return out
