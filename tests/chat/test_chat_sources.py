"""Citations in the forms chat frontends show: Open WebUI source events, a markdown list."""

from __future__ import annotations

from urllib.parse import unquote

from rag.chat.sources import markdown_sources, source_events, text_fragment


def citation(n: int, url: str, **changes) -> dict:
    return {"n": n, "chunk_id": f"d{n}:0", "document_id": f"d{n}", "title": f"Title {n}",
            "url": url, "author": "Ann Lee", "published_date": "2024-11-26", "source": "Wire",
            "text": f"Passage {n}.", "char_start": 10, "char_end": 20, "cited": n == 1,
            "highlight": {"text": "The missiles can reach 190 miles, officials said today.",
                          "char_start": 10, "char_end": 20}, **changes}


def test_a_text_fragment_holds_the_sentence_start_encoded():
    url = text_fragment("https://x.test/a#top", "The long-range missiles can reach 190 miles, "
                        "officials said on Tuesday in Kyiv & Washington.")
    assert url.startswith("https://x.test/a#:~:text=")
    fragment = url.split("#:~:text=", 1)[1]
    assert not set(",&- ") & set(fragment)
    assert unquote(fragment) == "The long-range missiles can reach 190 miles, officials"
    assert text_fragment("https://x.test/a", None) == "https://x.test/a"


def test_source_events_follow_the_citation_order_one_source_each():
    citations = [citation(1, "https://x.test/b"), citation(2, "https://x.test/a"),
                 citation(3, "https://x.test/b", author=None)]
    events = source_events(citations)
    assert [e["event"]["type"] for e in events] == ["source"] * 3
    data = [e["event"]["data"] for e in events]
    assert [d["metadata"][0]["url"].split("#")[0] for d in data] == [
        "https://x.test/b", "https://x.test/a", "https://x.test/b"]
    # Open WebUI groups by metadata.source: one group per number, so [n] opens passage n
    assert len({d["metadata"][0]["source"] for d in data}) == 3
    assert [d["document"] for d in data] == [["Passage 1."], ["Passage 2."], ["Passage 3."]]
    first = data[0]["metadata"][0]
    assert (first["author"], first["published_date"], first["char_start"], first["char_end"]) \
        == ("Ann Lee", "2024-11-26", 10, 20)


def test_markdown_sources_list_each_citation():
    text = markdown_sources([citation(1, "https://x.test/b"),
                             citation(2, "https://x.test/a", author=None,
                                      published_date=None)])
    assert text.splitlines()[-3:] == [
        "Sources:", "[1] Title 1 - Ann Lee, 2024-11-26 - https://x.test/b",
        "[2] Title 2 - https://x.test/a"]
    assert markdown_sources([]) == ""
