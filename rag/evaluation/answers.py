"""Answer metrics against a gold answer (pure functions).

Normalisation is SQuAD v1.1's (``evaluate-v1.1.py``): lowercase, drop ASCII punctuation, drop
the articles a/an/the, collapse white space. Exact match compares the normalised strings;
token F1 is the harmonic mean of the precision and recall of the shared tokens (0 when none is
shared).

The service's answers are extractive: a few whole sentences, each followed by citation
markers such as ``[2]``. Scored whole, such an answer would almost never match a short gold
answer exactly, so exact match and F1 are those of the answer's *best sentence* (the maximum
over its sentences, markers removed). Gold-in-answer is looser: the gold string, compared
case-insensitively, appears somewhere in the answer text.
"""

from __future__ import annotations

import re
import string
from collections import Counter

from rag.text.sentences import sentence_spans

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_CITATIONS = re.compile(r"\s*\[\d+\]")


def normalize(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize(prediction) == normalize(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, wanted = normalize(prediction).split(), normalize(gold).split()
    same = sum((Counter(predicted) & Counter(wanted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(wanted)
    return 2 * precision * recall / (precision + recall)


def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences, citation markers removed."""
    text = _CITATIONS.sub("", answer)
    return [text[start:end] for start, end in sentence_spans(text)]


def best_sentence_scores(answer: str | None, gold: str) -> tuple[float, float]:
    """(exact match, token F1) of the answer's best sentence against ``gold``; (0, 0) for
    no answer."""
    sentences = answer_sentences(answer) if answer else []
    if not sentences:
        return 0.0, 0.0
    return (max(exact_match(s, gold) for s in sentences),
            max(token_f1(s, gold) for s in sentences))


def gold_in_answer(answer: str | None, gold: str) -> float:
    return float(bool(answer and gold and gold.lower() in answer.lower()))
