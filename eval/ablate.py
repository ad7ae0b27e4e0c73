"""Retrieval ablations on one built index: every variant in one process, one table.

    python eval/ablate.py --index /tmp/dev --gold eval/data/multihop-rag-dev/queries.json \
        'base' 'mode=dense' 'mode=keyword' 'max_per_doc=0' 'source_hints=false'

Each variant is a space-separated list of RetrievalParams overrides (rag/retrieval/params.py)
plus an optional ``mode=``; the index itself (chunking) is fixed: build one per chunking
variant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.core.config import Settings
from rag.evaluation import evaluate as ev
from rag.retrieval.params import RetrievalParams
from rag.service import Service

COLS = ["hits@1", "hits@4", "hits@10", "mrr@10", "map@10", "all_evidence@10", "answered"]


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
        params = RetrievalParams(**{k: _value(RetrievalParams, k, v) for k, v in overrides.items()})
        svc = Service(base.index, base.embedder, base.settings, params)
        report = ev.run(lambda q, n, s=svc, m=mode: s.ask(q, k=n, mode=m), gold)
        o, refused = report["overall"], report["null"]["abstention"]  # None: no null questions
        print(f"{variant:<40}" + "".join(f"{o[c]:>17.4f}" for c in COLS)
              + (f"{refused:>12.3f}" if refused is not None else f"{'n/a':>12}")
              + f"{report['latency_ms']['p50']:>9.1f}", flush=True)
        if args.json:
            with args.json.open("a") as fh:
                fh.write(json.dumps({"variant": variant, "index": str(args.index),
                                     "overall": o, "null": report["null"],
                                     "answers": report["answers"],
                                     "by_type": report["by_type"]}) + "\n")


def _value(cls, name: str, text: str):
    """A field's value from text, by the type of its default."""
    default = cls.__dataclass_fields__[name].default
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes", "on")
    return type(default)(text)


if __name__ == "__main__":
    sys.exit(main())
