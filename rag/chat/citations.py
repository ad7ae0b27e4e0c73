"""Citation markers in generated text: keep ``[n]`` that refer to a passage, drop the rest.

Works on a stream: a marker split across chunks ("... [1" + "2] ...") is held back until it is
complete, and nothing else is delayed. ``[1, 3]`` and ``[1][3]`` are both understood; what
survives is written ``[1][3]``. Text in brackets that is not a list of numbers passes through.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[\s*\d{1,3}(?:\s*,\s*\d{1,3})*\s*\]")
_PARTIAL = re.compile(r"\[\s*(?:\d{1,3}(?:\s*,\s*)?)*\s*")  # could still become a marker
HOLD_MAX = 24  # a pending "[..." longer than this is plain text


class CitationFilter:
    def __init__(self, valid: set[int]):
        self.valid = valid
        self.dropped: list[int] = []  # numbers removed, in order of appearance
        self.kept: list[int] = []
        self._held = ""

    def _rewrite(self, marker: str) -> str:
        out = []
        for n in (int(x) for x in re.findall(r"\d+", marker)):
            if n in self.valid:
                out.append(f"[{n}]")
                self.kept.append(n)
            else:
                self.dropped.append(n)
        return "".join(out)

    def _scan(self, text: str, final: bool) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            start = text.find("[", i)
            if start < 0:
                out.append(text[i:])
                break
            out.append(text[i:start])
            match = _MARKER.match(text, start)
            if match:
                out.append(self._rewrite(match.group()))
                i = match.end()
                continue
            tail = text[start:]
            partial = _PARTIAL.fullmatch(tail)
            if partial and not final and len(tail) <= HOLD_MAX:
                self._held = tail  # wait for the rest of a possible marker
                return "".join(out)
            out.append("[")
            i = start + 1
        return "".join(out)

    def feed(self, text: str) -> str:
        """Text that can be shown now; a possibly unfinished marker is kept for later."""
        text, self._held = self._held + text, ""
        return self._scan(text, final=False)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._scan(text, final=True)


def filter_citations(text: str, valid: set[int]) -> tuple[str, list[int]]:
    """The whole-text form: (text with only valid markers, numbers dropped)."""
    f = CitationFilter(valid)
    out = f.feed(text) + f.flush()
    return out, f.dropped
