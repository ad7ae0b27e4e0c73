"""Could a learned fusion beat RRF? A two-fold cross-validated check on the dev questions.

    python eval/learned_fusion.py --index /tmp/dev

For every non-null question it runs the default hybrid searches (the question, then each
publisher, clause and date it names; dense, chunk BM25 and sentence BM25 each) and records
every candidate chunk with 18 features: its RRF share from each of the 9 (search kind x
question / publisher-or-date filter / clause) groups, the question's own cosine and BM25
scores (as a share of the best), how many rankings hold it, its article's best fused score,
its share of that, its place inside its article and how many candidates its article has.
The label is the paper's hit test (a gold fact inside the chunk). A logistic regression
(scikit-learn) is fitted on the even-numbered questions and scored on the odd ones, and the
other way round; its log-odds rank the candidates, minus ``lam`` for each better chunk of
the same article (the additive form of the per-article discount). Printed: the mean of the
two held-out halves for several ``lam``, against the default RRF ranking on the same halves,
and first how much of the evidence the candidates hold at all (the ceiling of any reranking).
No default depends on this script; eval/README.md quotes its output.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from rag.core.config import Settings
from rag.core.documents import Filters
from rag.evaluation.evaluate import load_gold
from rag.evaluation.metrics import all_evidence, paper_scores, squash, url_recall
from rag.retrieval.retriever import diversify
from rag.service import Service

KINDS = {"dense": 0, "keyword": 1, "sentences": 2}
METRICS = ("hits4", "hits10", "mrr10", "map10", "url_recall", "all_evidence")


def candidates(svc: Service, question: str, facts: list[str], texts: dict[int, str],
               where: dict[int, tuple[str, str]]) -> tuple[list[int], np.ndarray, np.ndarray]:
    r, p = svc.retriever, svc.retriever.params
    plans = r.plan(question, Filters())
    for pending in r.start_embedding(question, plans):
        pending.result()
    lists = []
    for n, s in enumerate(plans):
        group = 0 if n == 0 else (2 if s.spans else 1)
        for kind, col in KINDS.items():
            ranking = (r.index.dense_search(r.vector(question, s), p.depth, s.filters)
                       if kind == "dense" else getattr(r, kind)(s.text, p.depth, s.filters))
            lists.append((group, col, n == 0, s.weight, ranking))
    ids = sorted({c for *_, ranking in lists for c, _ in ranking})
    missing = [c for c in ids if c not in texts]
    for c, row in svc.index.chunk_rows(missing).items():
        texts[c], where[c] = row["text"], (row["document_id"], row["url"])
    ids = [c for c in ids if c in texts]
    pos = {c: i for i, c in enumerate(ids)}
    x = np.zeros((len(ids), 18))
    for group, col, own, weight, ranking in lists:
        top = ranking[0][1] if ranking else 1.0
        for rank, (c, score) in enumerate(ranking, start=1):
            if c not in pos:
                continue
            i = pos[c]
            x[i, group * 3 + col] += weight / (p.rrf_k + rank)
            x[i, 12] += 1
            if own:
                x[i, 9 + col] = score if col == 0 else (score / top if top > 0 else 0.0)
    x[:, 13] = 1.0 / len(plans)
    fused = x[:, :9].sum(1)
    docs = [where[c][0] for c in ids]
    best: dict[str, float] = {}
    seen: dict[str, int] = {}
    for i in np.argsort(-fused, kind="stable"):
        best.setdefault(docs[i], fused[i])
        seen[docs[i]] = seen.get(docs[i], 0) + 1
        x[i, 16] = 1.0 / seen[docs[i]]
    x[:, 14] = [best[d] for d in docs]
    x[:, 15] = fused / np.maximum(x[:, 14], 1e-9)
    x[:, 17] = [math.log(seen[d]) for d in docs]
    gold = [squash(f) for f in facts]
    y = np.array([any(g in squash(texts[c]) for g in gold) for c in ids], dtype=int)
    return ids, x, y


def score(questions, data, rank, texts, where) -> dict[str, float]:
    """Mean metrics of the top 10 that ``rank(ids, x) -> [(id, score)]`` gives each question."""
    sums = dict.fromkeys(METRICS, 0.0)
    for q, (ids, x, _) in zip(questions, data, strict=True):
        top = rank(ids, x)[:10]
        s = paper_scores([texts[c] for c, _ in top], q.facts)
        urls = [where[c][1] for c, _ in top]
        for name, value in zip(METRICS, (s.hits4, s.hits10, s.mrr10, s.map10,
                                         url_recall(urls, q.urls, 10),
                                         all_evidence(urls, q.urls, 10)), strict=True):
            sums[name] += value
    return {k: v / len(data) for k, v in sums.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--gold", type=Path, default=Path("eval/data/multihop-rag-dev/queries.json"))
    ap.add_argument("--lam", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    svc = Service.open(Settings(index_dir=args.index), serving=True)
    questions = [q for q in load_gold(args.gold) if not q.is_null]
    texts: dict[int, str] = {}
    where: dict[int, tuple[str, str]] = {}
    data = [candidates(svc, q.question, q.facts, texts, where) for q in questions]
    decay = svc.retriever.params.doc_decay
    reached = np.mean([[y.any(), len(set(q.urls) & {where[c][1] for c in ids}) / len(set(q.urls))]
                       for q, (ids, _, y) in zip(questions, data, strict=True)], axis=0)
    print(f"{len(questions)} questions, {np.mean([len(d[0]) for d in data]):.0f} candidates "
          f"each on average; a gold passage among them: {reached[0]:.4f}; gold URLs among "
          f"them: {reached[1]:.4f}")

    def rrf_rank(ids, x):
        ranked = sorted(zip(ids, x[:, :9].sum(1).tolist(), strict=True),
                        key=lambda t: (-t[1], t[0]))[:svc.retriever.params.depth]
        return diversify(ranked, {c: where[c][0] for c in ids}, decay)

    def learned_rank(model, scaler, lam):
        def rank(ids, x):
            ranked = sorted(zip(ids, model.decision_function(scaler.transform(x)).tolist(),
                                strict=True), key=lambda t: (-t[1], t[0]))
            seen: dict[str, int] = {}
            keyed = []
            for n, (c, s) in enumerate(ranked):
                k = seen.get(where[c][0], 0)
                seen[where[c][0]] = k + 1
                keyed.append((-(s - lam * k), n))
            return [ranked[n] for _, n in sorted(keyed)]
        return rank

    halves = [list(range(0, len(questions), 2)), list(range(1, len(questions), 2))]
    rows: dict[str, list[dict[str, float]]] = {"RRF (default)": []}
    for train, test in (halves, halves[::-1]):
        x = np.vstack([data[i][1] for i in train])
        y = np.concatenate([data[i][2] for i in train])
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(max_iter=3000).fit(scaler.transform(x), y)
        qs, ds = [questions[i] for i in test], [data[i] for i in test]
        rows["RRF (default)"].append(score(qs, ds, rrf_rank, texts, where))
        for lam in args.lam:
            rows.setdefault(f"learned, lam {lam:g}", []).append(
                score(qs, ds, learned_rank(model, scaler, lam), texts, where))
    print(f"{'held-out halves, mean':<24}" + "".join(f"{m:>14}" for m in METRICS))
    for name, halves_scores in rows.items():
        print(f"{name:<24}" + "".join(
            f"{np.mean([h[m] for h in halves_scores]):>14.4f}" for m in METRICS))


if __name__ == "__main__":
    main()
