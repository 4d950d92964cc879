"""Noticing a runaway reply: a small model that repeats one phrase, line or block until
`max_tokens`. Cheap per streamed chunk; exact repetition only (prose, code and data do
not repeat exactly for a hundred and fifty tokens)."""

from __future__ import annotations


class RepetitionDetector:
    """Notices a reply that repeats one piece of text over and over.

    Fed the streamed text chunk by chunk (a chunk is about a token). Every `EVERY`
    chunks it asks whether the text of the last `WINDOW` chunks is periodic with a
    period that fits at least three times (one phrase, one line, a number list), and
    every fourth time whether the last `LONG_WINDOW` chunks repeat a longer block
    twice. Exact repetition is what a runaway small model produces; prose, code and
    data do not repeat exactly for a hundred and fifty tokens.
    """

    WINDOW = 150
    LONG_WINDOW = 600
    EVERY = 8
    MAX_PERIOD = 2000  # characters
    TAIL = 16_000

    def __init__(self) -> None:
        self.tail = ""
        self._lens: list[int] = []
        self.count = 0
        self.period = 0

    def feed(self, chunk: str) -> bool:
        if not chunk:
            return False
        self.count += 1
        self.tail += chunk
        if len(self.tail) > 2 * self.TAIL:
            self.tail = self.tail[-self.TAIL :]
        self._lens.append(len(chunk))
        if len(self._lens) > 2 * self.LONG_WINDOW:
            del self._lens[: -self.LONG_WINDOW]
        if self.count < self.WINDOW or self.count % self.EVERY:
            return False
        if self._periodic(sum(self._lens[-self.WINDOW :]), 3):
            return True
        if self.count >= self.LONG_WINDOW and self.count % (4 * self.EVERY) == 0:
            return self._periodic(sum(self._lens[-self.LONG_WINDOW :]), 2)
        return False

    def _periodic(self, span: int, copies: int) -> bool:
        tail = self.tail
        span = min(span, len(tail))
        if span < 2 * copies:
            return False
        end = tail[-span:]
        last = tail[-1]
        for period in range(1, min(self.MAX_PERIOD, span // copies) + 1):
            if len(tail) < span + period or tail[-1 - period] != last:
                continue
            if tail[-span - period : -period] == end:
                self.period = period
                return True
        return False


def loop_start(text: str, period: int) -> int:
    """Where the repetition at the end of `text` (with `period`) begins."""
    i = len(text) - period - 1
    while i >= 0 and text[i] == text[i + period]:
        i -= 1
    return i + 1
