"""Parsing every supported format, and a one-line reason for every rejected input."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest.sources import Limits, beir_id, beir_url, parse_bytes, parse_paths

from conftest import DEV, SEED_URL
from helpers import REJECTIONS, SEED, seed_with


def test_seed_article_parses_with_all_fields():
    [article] = parse_bytes(SEED.encode(), "seed.txt").articles
    assert article.url == SEED_URL
    assert article.title == "Biden races to boost Ukraine’s position before Trump takes office"
    assert article.author == "Yasmeen Abutaleb, Michael Birnbaum, Ellen Francis"
    assert article.authors == ["Yasmeen Abutaleb", "Michael Birnbaum", "Ellen Francis"]
    assert article.published_date == date(2024, 11, 26)
    assert article.source_name == "washingtonpost.com"
    assert article.body.startswith("President Joe Biden’s recent decisions")
    assert "190 miles" in article.body
    assert article.summary and article.summary.startswith("President Biden recently authorized")
    assert article.highlights and "Ivo Daalder" in article.highlights
    assert "Ivo Daalder, former NATO" not in article.body[:200]  # metadata stays out of the body


def test_dev_corpus_parses_as_it_is():
    result = parse_paths([DEV / "corpus.json"])
    assert len(result.articles) == 375 and not result.rejected
    first = result.articles[0]
    assert first.source == "Yardbarker" and first.published_at == "2023-12-24T23:34:39+00:00"
    assert first.published_date == date(2023, 12, 24)


def test_json_aliases_and_jsonl():
    record = {"link": "https://example.com/a", "headline": "A", "text": "Body text.",
              "authors": ["Ann Lee", "Bo Chan"], "date": "2023-10-05", "publisher": "Example"}
    [a] = parse_bytes(json.dumps(record).encode(), "one.json").articles
    assert (a.url, a.title, a.body, a.author, a.source) == (
        "https://example.com/a", "A", "Body text.", "Ann Lee, Bo Chan", "Example")
    lines = "\n".join(json.dumps({**record, "link": f"https://example.com/{i}"}) for i in range(3))
    assert len(parse_bytes(lines.encode(), "many.jsonl").articles) == 3


def test_markdown_with_front_matter():
    text = ("---\nurl: https://example.com/md\nauthor: Ann Lee\ndate: 2023-10-05\n---\n"
            "# Title\n\nBody.")
    [a] = parse_bytes(text.encode(), "note.md").articles
    assert a.title == "Title" and a.published_date == date(2023, 10, 5) and "Body." in a.body


@pytest.mark.parametrize(("name", "text", "reason"), REJECTIONS)
def test_each_rejection_names_the_file_and_the_reason(name, text, reason):
    result = parse_bytes(text.encode(), name)
    assert not result.articles
    [rejection] = result.rejected
    message = str(rejection)
    assert message.startswith(f"{name}: ") and reason in message and "\n" not in message


def test_undecodable_bytes():
    [rejection] = parse_bytes(SEED.encode() + b"\xff\xfe", "latin.txt").rejected
    assert "not valid UTF-8" in str(rejection) and "latin.txt" in str(rejection)


def test_size_limit():
    result = parse_bytes(SEED.encode(), "big.txt", Limits(max_article_bytes=1000))
    assert "over the limit" in str(result.rejected[0])


def test_bad_records_in_a_batch_do_not_stop_the_rest():
    records = [{"url": "https://x.com/ok", "body": "Fine."}, {"body": "no url"},
               {"url": "https://x.com/empty", "body": ""}, "not an object",
               {"url": "https://x.com/ok", "body": "Duplicate URL."}]
    result = parse_bytes(json.dumps(records).encode(), "batch.json")
    assert [a.url for a in result.articles] == ["https://x.com/ok", "https://x.com/ok"]
    origins = sorted(r.origin for r in result.rejected)
    assert origins == ["batch.json[1]", "batch.json[2]", "batch.json[3]"]


def test_duplicate_urls_across_files_are_rejected(tmp_path: Path):
    (tmp_path / "a.txt").write_text(SEED)
    (tmp_path / "b.txt").write_text(SEED)
    result = parse_paths([tmp_path])
    assert len(result.articles) == 1
    assert "duplicate URL" in str(result.rejected[0])


def test_missing_path(tmp_path: Path):
    result = parse_paths([tmp_path / "nope.txt"])
    assert "no such file" in str(result.rejected[0])


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".txt", ".json", ".jsonl", ".md"]))
def test_random_bytes_are_parsed_or_cleanly_rejected(data, suffix):
    result = parse_bytes(data, f"fuzz{suffix}")
    assert len(result.articles) + len(result.rejected) >= 1 or suffix == ".jsonl"
    for rejection in result.rejected:
        assert str(rejection).startswith("fuzz") and "\n" not in str(rejection)


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(0, len(SEED)), junk=st.text(max_size=20))
def test_mangled_seed_files_are_parsed_or_cleanly_rejected(cut, junk):
    result = parse_bytes((SEED[:cut] + junk + SEED[cut:]).encode(), "mangled.txt")
    assert len(result.articles) + len(result.rejected) == 1


def test_invalid_ipv6_host_is_a_clean_rejection():
    # found by the fuzz test above: urlsplit raises ValueError on an unbalanced "["
    [rejection] = parse_bytes(seed_with(URL="https://[broken/x").encode(), "v6.txt").rejected
    assert "not an absolute http(s) URL" in str(rejection)


BEIR_DOCS = [{"_id": "d1", "title": "Tides", "text": "The moon pulls the oceans."},
             {"_id": "doc 2/é?#", "title": "", "text": "An id that needs quoting."},
             {"_id": 7, "text": "A numeric id.", "metadata": {"url": "not read"}}]


def test_beir_corpus_records_get_stand_in_urls():
    lines = "\n".join(json.dumps(d, ensure_ascii=False) for d in BEIR_DOCS)
    result = parse_bytes(lines.encode(), "corpus.jsonl")
    assert not result.rejected
    a, b, c = result.articles
    assert (a.url, a.title, a.body) == ("https://beir.local/d1", "Tides",
                                        "The moon pulls the oceans.")
    assert b.url == "https://beir.local/doc%202%2F%C3%A9%3F%23" and b.title == ""
    assert [beir_id(x.url) for x in result.articles] == ["d1", "doc 2/é?#", "7"]
    assert beir_id("https://example.com/d1") is None and beir_url("7") == c.url


def test_a_record_with_a_url_is_not_beir():
    record = {"_id": "d1", "url": "https://example.com/a", "text": "Body."}
    [a] = parse_bytes(json.dumps(record).encode(), "mixed.jsonl").articles
    assert a.url == "https://example.com/a"


def test_bad_beir_records_are_rejected_one_line_each():
    lines = [json.dumps({"_id": "", "text": "No id."}), json.dumps({"_id": "e", "text": ""}),
             json.dumps({"_id": ["x"], "text": "A list id."})]
    result = parse_bytes("\n".join(lines).encode(), "corpus.jsonl")
    assert not result.articles
    reasons = [str(r) for r in result.rejected]
    assert reasons[0].startswith("corpus.jsonl:1: BEIR _id must be a non-empty string")
    assert reasons[1] == "corpus.jsonl:2: empty body (no article text to index)"
    assert reasons[2].startswith("corpus.jsonl:3: BEIR _id")


def test_a_beir_folder_is_read_for_its_corpus_only(tmp_path: Path):
    folder = tmp_path / "datasets" / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(json.dumps(BEIR_DOCS[0]) + "\n")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "Tides?"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (tmp_path / "datasets" / "other.json").write_text(
        json.dumps({"url": "https://example.com/o", "body": "Other."}))
    for path in (folder, tmp_path / "datasets"):  # the folder, or a directory holding it
        result = parse_paths([path])
        assert not result.rejected, result.rejected
        assert {a.url for a in result.articles} >= {"https://beir.local/d1"}
        assert not any("q1" in a.url or a.body == "Tides?" for a in result.articles)
    assert len(parse_paths([tmp_path / "datasets"]).articles) == 2


def test_lone_surrogates_reject_their_article_only():
    """JSON may escape a lone surrogate ("\\ud800"): not text, so that article is rejected
    with the reason (it was a traceback / 500) and its neighbours go in."""
    good = {"url": "https://example.com/good", "title": "Good", "body": "Fine text here."}
    lines = [json.dumps(good)]
    for field in ("body", "title", "url"):
        bad = {**good, "url": f"https://example.com/{field}"}
        bad[field] = bad[field] + "\ud800"
        lines.append(json.dumps(bad))  # json.dumps writes the escape: "\ud800"
    result = parse_bytes("\n".join(lines).encode(), "mixed.jsonl")
    assert [a.url for a in result.articles] == [good["url"]]
    reasons = [r.reason for r in result.rejected]
    assert [r.split(" holds")[0] for r in reasons] == ["body", "title", "URL"]
    assert all("unpaired surrogate" in r for r in reasons)


def test_json_lines_end_at_newlines_only():
    """U+2028, U+2029 and U+0085 may stand raw inside a JSON string; they do not end a line."""
    body = "First paragraph.\u2028Second line.\u2029Third\u0085 and the end."
    raw = json.dumps({"url": "https://example.com/a", "body": body}, ensure_ascii=False)
    result = parse_bytes((raw + "\r\n" + raw.replace("/a", "/b") + "\n").encode(), "x.jsonl")
    assert not result.rejected and [a.body for a in result.articles] == [body, body]


def test_a_url_is_kept_whole_or_rejected():
    """Milvus stores 1,000 characters of a URL: a longer one was cut there, so the article's
    identity changed on every run (and --prune deleted what it had just written)."""
    base = "https://example.com/"
    ok, long = base + "a" * (1_000 - len(base)), base + "a" * (1_001 - len(base))
    result = parse_bytes("\n".join(json.dumps({"url": u, "body": "Some text."})
                                   for u in (ok, long)).encode(), "urls.jsonl")
    assert [a.url for a in result.articles] == [ok]
    assert result.rejected[0].reason == "URL is 1,001 characters, over the limit of 1,000"
