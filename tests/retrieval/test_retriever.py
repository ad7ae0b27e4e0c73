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


def test_one_article_questions_weigh_the_dense_rankings_less(tmp_path, hash_embedder,
                                                             monkeypatch):
    """single_dense_weight applies to questions that seem to need one article only: at 0 a
    short question's ranking ignores the dense search, a multi-article one's does not."""
    import json

    from rag.ingest.sources import article_from_record
    from rag.retrieval.params import RetrievalParams
    from rag.retrieval.retriever import Retriever

    from conftest import DEV, open_service

    records = json.loads((DEV / "corpus.json").read_text())[:6]
    built = open_service(tmp_path / "index", hash_embedder, chunk_tokens=60, chunk_overlap=10)
    built.ingest_articles([article_from_record(r, f"record {i}") for i, r in enumerate(records)])
    r = Retriever(built.index, hash_embedder, RetrievalParams(single_dense_weight=0.0))
    short = "Which apps joined the fediverse?"
    long = ("Does the report on fediverse apps and the report on stadiums agree on what users "
            "want from new social networks this year?")
    before = {q: r.rank(q).ranking for q in (short, long)}
    dense = built.index.dense_search
    monkeypatch.setattr(built.index, "dense_search",
                        lambda *a, **kw: list(reversed(dense(*a, **kw))))
    assert r.rank(short).ranking == before[short]
    assert r.rank(long).ranking != before[long]
