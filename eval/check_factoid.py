"""Check the dev factoid gold set (eval/data/factoid-dev.jsonl) against its corpus.

Usage: python eval/check_factoid.py [CORPUS_JSON] [GOLD_JSONL]

Verifies: each evidence text is one whole blingfire sentence of the cited article containing the
answer (1-6 words); no other article holds both the answer and the question's main key term (its
rarest word found in the cited article); natural questions copy no 6-word run of their sentence;
keyword queries have 2-5 words and facts apart from the natural ones; minimum counts of questions,
articles, sources, categories. Prints a summary; exits 1 on any violation.
"""

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import blingfire

HERE = Path(__file__).resolve().parent
MIN_TOTAL, MIN_NATURAL, MIN_KEYWORD = 84, 62, 22
MIN_ARTICLES, MIN_SOURCES, MAX_PER_ARTICLE = 60, 20, 2
COPY_RUN = 6  # a natural question may not share this many consecutive words with its sentence


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


STOP = frozenset(
    words(
        "a an and are as at be been by can could did do does for from had has have how in into is"
        " it its many much of on or the their this to was were what when where which who whom"
        " whose why with after before since than that about according"
    )
)


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=HERE / "data/multihop-rag-dev/corpus.json")
    ap.add_argument("gold", nargs="?", default=HERE / "data/factoid-dev.jsonl")
    args = ap.parse_args()
    corpus = json.loads(Path(args.corpus).read_text(encoding="utf-8"))
    gold = [json.loads(ln) for ln in Path(args.gold).read_text(encoding="utf-8").splitlines() if ln]
    by_url = {a["url"]: a for a in corpus}
    lower = {a["url"]: a["body"].lower() for a in corpus}
    vocab = {a["url"]: set(words(a["body"])) for a in corpus}
    df = Counter(w for v in vocab.values() for w in v)
    natural_facts = {q["evidence"][0]["text"] for q in gold if q["type"] == "natural"}
    errors: list[str] = []
    warnings: list[str] = []
    err = errors.append
    for q in gold:
        qid, text, answer = q.get("id", "?"), q["evidence"][0]["text"], q["answer"]
        url = q["evidence"][0]["url"]
        if q["type"] not in ("natural", "keyword"):
            err(f"{qid}: bad type {q['type']!r}")
        if url not in by_url:
            err(f"{qid}: unknown url {url}")
            continue
        body = by_url[url]["body"]
        _, offsets = blingfire.text_to_sentences_and_offsets(body)
        if text.strip() not in {body[s:e].strip() for s, e in offsets}:
            err(f"{qid}: evidence is not one whole blingfire sentence of the article")
        if not 60 <= len(text) <= 350:
            warnings.append(f"{qid}: evidence length {len(text)} outside 60-350")
        if not 1 <= len(answer.split()) <= 6:
            err(f"{qid}: answer has {len(answer.split())} words")
        if answer.lower() not in text.lower():
            err(f"{qid}: answer {answer!r} not in evidence sentence")
        qwords = words(q["question"])
        if q["type"] == "keyword" and not 2 <= len(q["question"].split()) <= 5:
            err(f"{qid}: keyword query must have 2-5 words")
        if q["type"] == "keyword" and text in natural_facts:
            err(f"{qid}: keyword query reuses the fact of a natural question")
        if q["type"] == "natural" and ngrams(qwords, COPY_RUN) & ngrams(words(text), COPY_RUN):
            err(f"{qid}: question copies {COPY_RUN}+ consecutive words of the sentence")
        keys = [w for w in set(qwords) if w not in STOP and len(w) > 2 and w in vocab[url]]
        if not keys:
            err(f"{qid}: no key term of the question occurs in the article")
            continue
        key = min(keys, key=lambda w: (df[w], w))
        clash = [u for u in by_url if u != url and answer.lower() in lower[u] and key in vocab[u]]
        if clash:
            err(f"{qid}: answer {answer!r} with key term {key!r} also in {clash[0]}")

    errors += [f"duplicate id {i}" for i, n in Counter(q["id"] for q in gold).items() if n > 1]
    types = Counter(q["type"] for q in gold)
    per_article = Counter(u for q in gold if (u := q["evidence"][0]["url"]) in by_url)
    sources = Counter(by_url[u]["source"] for u in per_article)
    cats = Counter(by_url[u]["category"] for u in per_article)
    missing_cats = {a["category"] for a in corpus} - set(cats)
    for cond, msg in [
        (len(gold) >= MIN_TOTAL, f"fewer than {MIN_TOTAL} questions"),
        (types["natural"] >= MIN_NATURAL, f"fewer than {MIN_NATURAL} natural questions"),
        (types["keyword"] >= MIN_KEYWORD, f"fewer than {MIN_KEYWORD} keyword queries"),
        (len(per_article) >= MIN_ARTICLES, f"fewer than {MIN_ARTICLES} articles"),
        (len(sources) >= MIN_SOURCES, f"fewer than {MIN_SOURCES} sources"),
        (max(per_article.values(), default=0) <= MAX_PER_ARTICLE, "too many questions per article"),
        (not missing_cats, f"categories not covered: {sorted(missing_cats)}"),
    ]:
        if not cond:
            err(msg)
    print(f"questions: {len(gold)} (natural {types['natural']}, keyword {types['keyword']})")
    print(f"articles: {len(per_article)}, sources: {len(sources)}")
    print("categories (articles): " + ", ".join(f"{c} {n}" for c, n in cats.most_common()))
    for line in [f"warning: {w}" for w in warnings] + [f"ERROR: {e}" for e in errors]:
        print(line)
    print("OK" if not errors else f"FAILED: {len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
