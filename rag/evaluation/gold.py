"""A gold question, whatever format it came from, and a loaded gold set.

What a question is judged by depends on what its gold holds:

- ``facts``: evidence texts; a passage holding one (spaces and newlines aside) is a hit
  (MultiHop-RAG's protocol; Ragas reference contexts are read as facts);
- ``urls``: the articles holding the evidence (URL metrics, article@1);
- ``qrels``: graded document judgments (BEIR), document id -> relevance;
- ``answer``: the gold answer (exact match, token F1, gold-in-answer).

A *null* question has no evidence of any kind (the index cannot answer it, and the right
reply is none) unless ``answerable`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answer: str
    qtype: str
    facts: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    qrels: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # evidence shown in the report, when not facts
    answerable: bool | None = None  # None: answerable when there is evidence

    @property
    def is_null(self) -> bool:
        if self.answerable is not None:
            return not self.answerable
        return not self.facts and not self.urls and not self.qrels


@dataclass(frozen=True)
class GoldSet:
    format: str  # "multihop", "jsonl", "ragas" or "beir"
    questions: list[GoldQuestion]
