"""Optional generation by any OpenAI-compatible server (llama.cpp server, vLLM, Ollama).

Off unless ``RAG_LLM_BASE_URL`` is set. The model sees only numbered passages and is told to
answer from them with ``[n]`` citations; the caller filters the citations it writes. Written
against the chat-completions protocol those servers share (``/v1/chat/completions`` with
``stream: true``), through the ``openai`` client package.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rag.chat.conversation import Turn
from rag.core.documents import Passage
from rag.core.errors import RagError
from rag.core.extras import need

SYSTEM_PROMPT = (
    "You answer questions about news articles using only the numbered passages given with "
    "the question. Cite every statement with the number of the passage it comes from, in "
    "square brackets, like [1] or [2][3]. Do not use outside knowledge. If the passages do "
    "not contain the answer, say that it is not found in the indexed articles. Be brief.")
HISTORY_TURNS = 6  # earlier user/assistant messages passed on, for follow-ups


class LlmUnavailable(RagError):
    """The configured generation server failed or could not be reached."""

    code = "llm_unavailable"
    http_status = 502


def passages_block(passages: Sequence[Passage]) -> str:
    parts = []
    for p in passages:
        meta = ", ".join(x for x in (p.title, p.source, p.author, p.published_date) if x)
        parts.append(f"[{p.rank}] ({meta})\n{p.text}")
    return "\n\n".join(parts)


def grounded_messages(turns: Sequence[Turn], question: str,
                      passages: Sequence[Passage]) -> list[dict]:
    history = [{"role": t.role, "content": t.content} for t in turns[:-1]
               if t.role in ("user", "assistant") and t.content.strip()][-HISTORY_TURNS:]
    prompt = (f"Passages:\n\n{passages_block(passages)}\n\nQuestion: {question}\n\n"
              "Answer from the passages only, citing them as [n].")
    return [{"role": "system", "content": SYSTEM_PROMPT}, *history,
            {"role": "user", "content": prompt}]


@dataclass
class Llm:
    base_url: str
    model: str
    api_key: str = field(default="", repr=False)  # never in a log line or traceback
    timeout: float = 60.0

    def _client(self):
        from openai import OpenAI

        # local servers take any key; the client insists on one
        return OpenAI(base_url=self.base_url, api_key=self.api_key or "none",
                      timeout=self.timeout, max_retries=0)

    def stream(self, messages: list[dict]) -> Iterator[str]:
        """Content pieces as the server sends them. Connection and HTTP errors surface as
        LlmUnavailable before the first piece (the request is made eagerly)."""
        import openai

        try:
            response = self._client().chat.completions.create(
                model=self.model, messages=messages, stream=True, temperature=0)
        except openai.OpenAIError as exc:
            raise LlmUnavailable(f"the generation server at {self.base_url} failed: "
                                 f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        return self._pieces(response)

    @staticmethod
    def _pieces(response) -> Iterator[str]:
        import openai

        try:
            for chunk in response:
                for choice in chunk.choices or ():
                    if choice.delta and choice.delta.content:
                        yield choice.delta.content
        except openai.OpenAIError as exc:
            raise LlmUnavailable(f"the generation server stopped: {str(exc)[:200]}") from exc
        finally:
            response.close()


def llm_from(base_url: str, model: str = "", api_key: str = "",
             timeout: float = 60.0) -> Llm | None:
    """The generation server at ``base_url``, or None (extractive replies)."""
    if not base_url:
        return None
    need("openai", "llm", "RAG_LLM_BASE_URL (generated replies)")
    return Llm(base_url, model or "default", api_key, timeout)
