"""Chunking with the real model's tokenizer: spans slice back, chunk and title fit its window."""

from __future__ import annotations

from rag.ingest.sources import parse_bytes

from conftest import SEED_FILE, open_service


def test_seed_file_chunks_slice_back_to_the_body(tmp_path, real_embedder):
    svc = open_service(tmp_path, real_embedder)
    report = svc.ingest_paths([SEED_FILE])
    assert len(report.added) == 1
    doc = svc.index.document(report.added and parse_bytes(SEED_FILE.read_bytes(),
                                                          "s.txt").articles[0].document_id)
    rows = svc.index.chunk_rows(range(1, doc["chunks"] + 1))
    assert len(rows) == doc["chunks"]
    for row in rows.values():
        assert doc["body"][row["char_start"]:row["char_end"]] == row["text"]
    counts = real_embedder.count_tokens([r["text"] for r in rows.values()])
    assert max(counts) <= svc.settings.chunk_tokens


def test_a_chunk_and_its_title_always_fit_what_the_model_reads(real_embedder):
    from rag.core.documents import Article
    from rag.ingest.pipeline import TITLE_TOKENS, chunk_budget, plan_article

    body = " ".join(f"Sentence {i} says the missiles reached {i} kilometres." for i in range(200))
    window = real_embedder.max_tokens
    budget = chunk_budget(real_embedder, window, 40)
    sizes = {}
    for title in ("", "Short title", "A very long headline about " + "missiles and ranges " * 20):
        chunks, texts = plan_article(Article(url="u", title=title, body=body), real_embedder,
                                     budget, 40)
        counts = real_embedder.count_tokens(texts)
        assert max(counts) <= window  # nothing the model would cut off
        assert max(c.n_tokens for c in chunks) > window - TITLE_TOKENS - 12  # and little room left
        sizes[title[:5]] = max(c.n_tokens for c in chunks)
    assert sizes[""] >= sizes["Short"] > sizes["A ver"]  # a shorter title leaves more room
