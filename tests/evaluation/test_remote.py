"""The HTTP asker against a small real HTTP server (the standard library's): what it sends,
what it reads back, and one line for each way a server can fail. (tests/e2e/test_eval_http.py
runs it against `rag serve`.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.core.errors import RagError
from rag.evaluation import remote

from conftest import free_port

ANSWER = {"question": "Q?", "took_ms": 1.0, "answer": {"text": "It is 42. [1]", "sentences": []},
          "passages": [{"rank": 1, "score": 0.5, "text": "The answer is 42.", "document_id": "d1",
                        "chunk_id": "c1", "title": "T", "url": "https://x.example/1",
                        "author": None, "published_date": None, "source": "x", "char_start": 0,
                        "char_end": 17, "highlight": None}]}


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict, str | None]] = []

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(200, json.dumps({"model": "m", "documents": 1}).encode())

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = self.headers.get("Authorization")
        Handler.seen.append((self.path, body, key))
        if self.path == "/keyed/query" and key != "Bearer right":
            status, code = (401, "unauthorized") if key is None else (403, "forbidden")
            error = {"error": {"code": code, "message": "this endpoint needs\nan API key"}}
            self.reply(status, json.dumps(error).encode())
        elif self.path == "/boom/query":
            self.reply(500, json.dumps({"error": {"code": "internal", "message": "oops"}}).encode())
        elif self.path == "/html/query":
            self.reply(502, b"<html>Bad gateway</html>", "text/html")
        elif self.path == "/text/query":
            self.reply(200, b"not json", "text/plain")
        elif self.path == "/shape/query":
            self.reply(200, json.dumps({"passages": [{"text": "no url"}], "answer": None}).encode())
        elif self.path == "/slow/query":
            time.sleep(1.0)
            self.reply(200, json.dumps(ANSWER).encode())
        else:
            self.reply(200, json.dumps(ANSWER).encode())


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_asks_post_query_and_reads_the_result(server):
    Handler.seen.clear()
    result = remote.asker(server + "/", mode="keyword")("Q?", 7)
    assert Handler.seen == [("/query", {"question": "Q?", "k": 7, "mode": "keyword",
                                        "answer": True}, None)]
    [p] = result.passages
    assert (p.rank, p.text, p.url, p.document_id, p.title) == (
        1, "The answer is 42.", "https://x.example/1", "d1", "T")
    assert result.answer is not None and result.answer.text == "It is 42. [1]"
    assert remote.server_stats(server) == {"model": "m", "documents": 1}


def test_the_key_is_sent_as_a_bearer_token(server):
    Handler.seen.clear()
    assert remote.asker(server + "/keyed", api_key="right")("Q?", 5).passages
    assert Handler.seen[0][2] == "Bearer right"


@pytest.mark.parametrize(("path", "key", "expected"), [
    ("/keyed", None, "/keyed/query: HTTP 401 unauthorized: this endpoint needs an API key "
                     "(give the server's key with --api-key)"),
    ("/keyed", "wrong", "/keyed/query: HTTP 403 forbidden: this endpoint needs an API key "
                        "(the key given with --api-key is not accepted)"),
    ("/boom", None, "/boom/query: HTTP 500 internal: oops"),
    ("/html", None, "/html/query: HTTP 502 <html>Bad gateway</html>"),
    ("/text", None, "/text/query: the answer is not JSON"),
    ("/shape", None, "/shape/query: the answer is not a /query response (no 'rank')"),
])
def test_each_failure_is_one_line_naming_the_url(server, path, key, expected):
    with pytest.raises(RagError) as caught:
        remote.asker(server + path, api_key=key)("Q?", 5)
    assert str(caught.value) == server + expected


def test_no_answer_in_time(server):
    with pytest.raises(RagError, match=r"/slow/query: no answer within 0.2 s$"):
        remote.asker(server + "/slow", timeout=0.2)("Q?", 5)


def test_nothing_listening():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RagError) as caught:
        remote.server_stats(url)
    message = str(caught.value)
    assert message.startswith(f"{url}/stats: cannot connect (") and "\n" not in message


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://host", "http://", "http://h/?q=1"])
def test_not_a_server_address(url):
    with pytest.raises(RagError, match="is not a server address"):
        remote.asker(url)


def test_k_beyond_what_a_server_returns(server):
    with pytest.raises(RagError, match="at most 50 passages"):
        remote.asker(server)("Q?", remote.MAX_K + 1)
