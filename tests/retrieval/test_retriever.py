"""The retriever's plumbing: one model call a question, its clauses pooled from it."""

from __future__ import annotations


def test_a_questions_clauses_come_from_its_own_model_call(tmp_path, hash_embedder):
    """Each named publisher's clause is searched with a vector pooled from the question's
    own model call: one call a question (plumbing: a hash embedder will do)."""
    import json

    from rag.ingest.sources import article_from_record
    from rag.service import Service

    from conftest import DEV, open_service

    class Recording:
        def __init__(self, inner):
            self.inner, self.calls = inner, []

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode(self, texts):
            self.calls.extend([t] for t in texts)
            return self.inner.encode(texts)

        def encode_parts(self, text, parts):
            self.calls.append([text, *parts])
            return self.inner.encode_parts(text, parts)

    records = json.loads((DEV / "corpus.json").read_text())
    two = [records[0], next(r for r in records if r["source"] != records[0]["source"])]
    built = open_service(tmp_path / "index", hash_embedder, chunk_tokens=60, chunk_overlap=10)
    built.ingest_articles([article_from_record(r, f"record {i}") for i, r in enumerate(two)])
    a, b = (r["source"] for r in two)
    q = (f"Does the {a} article about fediverse apps like Mastodon and the {b} report on "
         "stadiums agree on what users want from new social networks?")
    emb = Recording(hash_embedder)
    svc = Service(built.index, emb, built.settings)
    assert svc.retriever.search(q, k=3)
    cut = q.index(f"{b} report")
    assert emb.calls == [[q, ((cut, len(q)),), ((0, cut),)]]  # all in one call
    assert svc.retriever.search(q, k=3) and len(emb.calls) == 1  # then from the cache
