"""The retrieval tuning, measured on the gold sets (eval/README.md has each choice's figures).

Not settings: a user does not tune these, and each value is the one that won on every gold
set. An evaluation or ablation script may build other ``RetrievalParams`` in process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RetrievalParams:
    depth: int = 100  # candidates taken from each ranking before fusion
    # a question that seems to need one article (planner.multi_article) sums its rankings'
    # standardised scores (fusion.zsum); "rrf" fuses their ranks as the others' do
    single_fusion: Literal["zsum", "rrf"] = "zsum"
    rrf_k: int = 5  # 60 in Cormack et al. (2009); 5 measured best here
    # weight of the dense rankings for a question that seems to need one article
    # (planner.multi_article; 1 for the others): its exact words matter more
    single_dense_weight: float = 0.67
    keyword_weight: float = 1.0  # weight of the chunk BM25 rankings in the fusion
    sentence_weight: float = 1.0  # weight of the sentence BM25 rankings
    hint_weight: float = 1.0  # weight of the rankings restricted to a named source or date
    clause_weight: float = 1.0  # weight of a named source's own clause of the question
    source_hints: bool = True  # search within each publisher the question names
    date_hints: bool = True  # and within each date it names
    # for a question that seems to need several articles (planner.multi_article), an
    # article's n-th chunk ranks by its score x doc_decay ** n
    doc_decay: float = 0.65
    max_per_doc: int = 0  # chunks one article may place before all others' (0 = no cap)
