"""Retrieval ablations on one built index: every variant in one process, one table.

    python eval/ablate.py --index /tmp/dev --gold eval/data/multihop-rag-dev/queries.json \
        'base' 'mode=dense' 'mode=keyword' 'max_per_doc=0' 'source_hints=false'

Each variant is a space-separated list of Settings overrides (RAG_* names in lower case) plus
an optional ``mode=``; the index itself (chunking) is fixed: build one per chunking variant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag import evaluate as ev
from rag.config import Settings
from rag.service import Service

COLS = ["hits@4", "hits@10", "mrr@10", "map@10", "url_recall@10", "all_evidence@10", "answered"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--gold", type=Path, default=Path("eval/data/multihop-rag-dev/queries.json"))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--json", type=Path, help="append one JSON line per variant here")
    ap.add_argument("variants", nargs="+")
    args = ap.parse_args()
    gold = ev.load_gold(args.gold)[: args.limit]
    base = Service.open(Settings(index_dir=args.index))
    print(f"{'variant':<40}" + "".join(f"{c:>17}" for c in COLS) + f"{'null abst.':>12}"
          f"{'p50 ms':>9}")
    for variant in args.variants:
        overrides = dict(kv.split("=", 1) for kv in variant.split() if "=" in kv)
        mode = overrides.pop("mode", "hybrid")
        svc = Service(base.store, base.embedder, Settings(index_dir=args.index, **overrides))
        report = ev.run(lambda q, n, s=svc, m=mode: s.ask(q, k=n, mode=m), gold)
        o = report["overall"]
        print(f"{variant:<40}" + "".join(f"{o[c]:>17.4f}" for c in COLS)
              + f"{report['null']['abstention']:>12.3f}{report['latency_ms']['p50']:>9.1f}",
              flush=True)
        if args.json:
            with args.json.open("a") as fh:
                fh.write(json.dumps({"variant": variant, "index": str(args.index),
                                     "overall": o, "null": report["null"],
                                     "answers": report["answers"],
                                     "by_type": report["by_type"]}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
