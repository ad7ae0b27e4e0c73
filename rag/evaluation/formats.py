"""Gold sets from files: one loader per format, chosen by the path's content and shape.

- a directory is a **BEIR** folder: ``queries.jsonl`` (``_id``, ``text``), ``qrels/test.tsv``
  (``query-id``, ``corpus-id``, ``score``, after a header row) and, for the titles the report
  shows, ``corpus.jsonl`` (``_id``, ``title``, ``text``). As BEIR's own loader, only queries
  with judgments are kept. A judged document's URL is ``rag.ingest.sources.beir_url`` of its
  id: the URL ``rag ingest`` gives it.
- a JSON array or JSONL file whose records have ``query``/``question`` is **MultiHop-RAG**'s
  ``queries.json`` (``query``, ``answer``, ``question_type``, ``evidence_list[{url, fact}]``)
  or the simple format (``question``, ``answer``, ``evidence[{url, text}]``, optional ``type``
  and ``id``); a record without evidence is a null question;
- records with Ragas' fields are **Ragas** samples: ``user_input`` (or ``question``),
  ``reference`` (or ``ground_truth``) and, optionally, ``reference_contexts`` (or
  ``contexts``): texts that count as hits when a retrieved passage holds one, as MultiHop's
  facts do. (In Ragas' older datasets ``contexts`` were what a system retrieved; read here they
  are gold.) The type is ``synthesizer_name`` or ``type`` when given. A Ragas question is
  never null; without contexts only its answer is scored.

Every problem is one line naming the file (and the record or line).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.core.errors import RagError
from rag.evaluation.gold import GoldQuestion, GoldSet
from rag.ingest.sources import beir_url

RAGAS_FIELDS = ("user_input", "reference", "ground_truth", "reference_contexts", "contexts")
BEIR_QRELS = Path("qrels") / "test.tsv"
NOTE_CHARS = 120  # of a judged BEIR document's title in the report


def load(path: Path) -> GoldSet:
    """The gold set at ``path``, in whichever format it is."""
    path = Path(path)
    if path.is_dir():
        return GoldSet("beir", load_beir(path))
    records = read_records(path)
    first = records[0]
    if isinstance(first, dict) and any(name in first for name in RAGAS_FIELDS):
        return GoldSet("ragas", ragas_questions(records, path))
    questions = multihop_questions(records, path)
    multihop = isinstance(first, dict) and ("query" in first or "evidence_list" in first)
    return GoldSet("multihop" if multihop else "jsonl", questions)


def load_gold(path: Path) -> list[GoldQuestion]:
    return load(path).questions


def read_records(path: Path) -> list[Any]:
    """A JSON array (or an object of equal-length columns, as a dataset's ``to_dict``
    gives) or JSON Lines, whatever the suffix; a non-empty list of records."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"{path}: cannot read gold set ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        if len(lines) < 2 or not lines[0][1].lstrip().startswith("{"):
            raise RagError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
        data = []
        for n, line in lines:
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError as bad:
                raise RagError(f"{path}: malformed JSON at line {n}: {bad.msg}") from None
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()) \
            and len({len(v) for v in data.values()}) == 1:
        data = [dict(zip(data, row, strict=True)) for row in zip(*data.values(), strict=True)]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise RagError(f"{path}: expected a non-empty list of questions")
    return data


def multihop_questions(records: list[Any], path: Path) -> list[GoldQuestion]:
    out = []
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not isinstance(r.get("query", r.get("question")), str):
            raise RagError(f"{path}: question {i} has no 'question' (or 'query') text")
        evidence = r.get("evidence_list", r.get("evidence")) or []
        if not isinstance(evidence, list) or not all(isinstance(e, dict) for e in evidence):
            raise RagError(f"{path}: question {i}: evidence must be a list of objects")
        facts = [str(e.get("fact", e.get("text"))) for e in evidence
                 if e.get("fact", e.get("text"))]
        out.append(GoldQuestion(
            id=str(r.get("id", i)), question=str(r.get("query", r.get("question"))),
            answer=str(r.get("answer") or ""),
            qtype=str(r.get("question_type", r.get("type")) or ("null_query" if not evidence
                                                                else "question")),
            facts=facts, urls=[str(e["url"]) for e in evidence if e.get("url")]))
    return out


def _field(record: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if record.get(name) is not None:
            return record[name]
    return None


def ragas_questions(records: list[Any], path: Path) -> list[GoldQuestion]:
    out = []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise RagError(f"{path}: record {i} is not an object")
        question = _field(r, ("user_input", "question"))
        if not isinstance(question, str) or not question.strip():
            raise RagError(f"{path}: record {i} has no 'user_input' (or 'question') text")
        reference = _field(r, ("reference", "ground_truth", "ground_truths"))
        if isinstance(reference, list) and reference and all(isinstance(x, str)
                                                              for x in reference):
            reference = reference[0]
        if not isinstance(reference, str) or not reference.strip():
            raise RagError(f"{path}: record {i} has no 'reference' (or 'ground_truth') text")
        contexts = _field(r, ("reference_contexts", "contexts")) or []
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
            raise RagError(f"{path}: record {i}: reference_contexts must be a list of texts")
        given_id = _field(r, ("id", "_id"))
        out.append(GoldQuestion(
            id=str(i if given_id is None else given_id), question=question, answer=reference,
            qtype=str(_field(r, ("synthesizer_name", "type", "question_type")) or "question"),
            facts=[c for c in contexts if c.strip()], answerable=True))
    return out


# ---------------------------------------------------------------- BEIR


def load_beir(folder: Path) -> list[GoldQuestion]:
    queries_file, qrels_file = folder / "queries.jsonl", folder / BEIR_QRELS
    for needed in (queries_file, qrels_file):
        if not needed.is_file():
            raise RagError(f"{folder}: not a BEIR folder (no {needed.relative_to(folder)})")
    qrels = read_qrels(qrels_file)
    queries: dict[str, str] = {}
    for n, record in _jsonl(queries_file):
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) \
                or record.get("_id") is None:
            raise RagError(f"{queries_file}:{n}: a query needs '_id' and 'text'")
        queries[str(record["_id"])] = record["text"]
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise RagError(f"{qrels_file}: judges {len(missing)} queries that {queries_file.name} "
                       f"lacks (e.g. {missing[0]!r})")
    if not qrels:
        raise RagError(f"{qrels_file}: no judgments")
    wanted = {doc for judged in qrels.values() for doc, score in judged.items() if score > 0}
    titles = read_titles(folder / "corpus.jsonl", wanted)
    out = []
    for qid, text in queries.items():
        if qid not in qrels:
            continue
        relevant = sorted((d for d, s in qrels[qid].items() if s > 0),
                          key=lambda d: -qrels[qid][d])
        out.append(GoldQuestion(
            id=qid, question=text, answer="", qtype="beir", qrels=qrels[qid],
            urls=[beir_url(d) for d in relevant],
            notes=[_note(d, qrels[qid][d], titles.get(d, "")) for d in relevant]))
    return out


def _note(doc_id: str, relevance: int, title: str) -> str:
    note = f"{doc_id} (relevance {relevance})"
    return f"{note}: {title[:NOTE_CHARS]}" if title else note


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id  corpus-id  score`` rows, tab-separated, after a header row (as BEIR's
    loader, which skips the first row whatever it holds; here a first row whose score is a
    number is kept)."""
    qrels: dict[str, dict[str, int]] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for n, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
                if not row or (n == 1 and not re.fullmatch(r"-?\d+", row[-1].strip())):
                    continue
                if len(row) < 3 or not re.fullmatch(r"-?\d+", row[2].strip()):
                    raise RagError(f"{path}:{n}: expected query-id, corpus-id and an integer "
                                   "score, tab-separated")
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"{path}: cannot read ({exc})") from None
    return qrels


def read_titles(corpus: Path, wanted: set[str]) -> dict[str, str]:
    """The titles of the ``wanted`` documents (only their lines are parsed); none when the
    folder has no corpus."""
    if not corpus.is_file():
        return {}
    titles = {}
    id_field = re.compile(r'"_id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)')
    for n, line in enumerate(_lines(corpus), start=1):
        m = id_field.search(line)
        if not m or str(json.loads(m.group(1))) not in wanted:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RagError(f"{corpus}:{n}: malformed JSON: {exc.msg}") from None
        titles[str(record.get("_id"))] = " ".join(str(record.get("title") or "").split())
    return titles


def _lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            yield from fh
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"{path}: cannot read ({exc})") from None


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    for n, line in enumerate(_lines(path), start=1):
        if line.strip():
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise RagError(f"{path}:{n}: malformed JSON: {exc.msg}") from None
