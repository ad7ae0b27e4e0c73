"""A small stand-in for an OpenAI-compatible generation server (llama.cpp / vLLM / Ollama),
for tests of RAG_LLM_BASE_URL. It answers from the prompt it is given: the first sentence of
passage [1], cited [1], plus a claim cited [9] (a passage that does not exist), so tests can
see that passages reach the model and that invented citation numbers are dropped. Streams
split the markers across chunks. A conversation holding FAIL-UPSTREAM gets a 500, and one
holding FAIL-MIDSTREAM a stream that breaks off after two chunks. Every request body is
appended to $FAKE_LLM_LOG.

Run: uvicorn fake_llm:app --port P   (from tests/)
"""

from __future__ import annotations

import json
import os
import re
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

app = FastAPI()


def reply_for(prompt: str) -> str:
    match = re.search(r"^\[1\] \(.*?\)\n(.+?[.!?])(\s|$)", prompt, re.M | re.S)
    first = match.group(1) if match else "No passage one."
    return f"{first} [1] It was also said that prices doubled [9]."


def pieces(text: str) -> list[str]:
    """Chunks that cut markers in half: '... [', '1', '] ...'."""
    out, i = [], 0
    for m in re.finditer(r"\[(\d+)\]", text):
        out += [text[i:m.start() + 1], m.group(1), "]"]
        i = m.end()
    return [p for p in [*out, text[i:]] if p]


@app.get("/v1/models")
def models() -> dict:
    return {"object": "list", "data": [{"id": "stand-in", "object": "model", "created": 0,
                                        "owned_by": "tests"}]}


@app.post("/v1/chat/completions")
async def completions(request: Request):
    body = await request.json()
    with open(os.environ["FAKE_LLM_LOG"], "a") as log:
        log.write(json.dumps(body) + "\n")
    prompt = body["messages"][-1]["content"]
    if any("FAIL-UPSTREAM" in str(m.get("content")) for m in body["messages"]):
        return JSONResponse({"error": {"message": "model crashed"}}, status_code=500)
    text = reply_for(prompt)
    head = {"id": "cmpl-1", "created": int(time.time()), "model": body.get("model", "x")}
    if not body.get("stream"):
        return {**head, "object": "chat.completion", "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": text}}]}

    midway = any("FAIL-MIDSTREAM" in str(m.get("content")) for m in body["messages"])

    def events():
        for n, piece in enumerate(pieces(text)):
            if midway and n == 2:
                raise RuntimeError("the stand-in drops the connection mid-answer")
            chunk = {**head, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
