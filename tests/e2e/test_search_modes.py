"""Every retrieval mode over a real index of seeds/ (the real model)."""

from __future__ import annotations

from rag.core.documents import Filters


def test_every_mode_over_the_seed_index(seed_index, real_embedder):
    from rag.core.config import Settings
    from rag.service import Service

    svc = Service.open(Settings(index_dir=seed_index), embedder=real_embedder)
    q = "What is the range of the ATACMS missiles?"
    for mode in ("hybrid", "dense", "keyword"):
        passages = svc.retriever.search(q, k=3, mode=mode)
        assert passages and all(p.url.startswith("https://www.washingtonpost.com/")
                                for p in passages)
        body = svc.index.document(passages[0].document_id)["body"]
        assert all(body[p.char_start:p.char_end] == p.text for p in passages)
    assert svc.retriever.search(q, k=3, filters=Filters(authors=("Nobody",))) == []
    assert svc.retriever.search("zzzqqq xxyyzz", k=3, mode="keyword") == []
