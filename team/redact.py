"""Keep keys out of everything a person or a file sees.

One function for the whole engine: run events (screen, `--json`), run records,
error lines and doctor output all pass through `scrub`. Streamed text (model
tokens, live sandbox output) goes through a `StreamScrub` per stream, because a
key split across chunks ("sk-ab" + "cdef…") is in no single chunk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{2})[A-Za-z0-9_\-*]{6,}")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every secret (and anything shaped like an OpenAI key) with `***`."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _KEYLIKE.sub(r"\1***", text)


_KEYLIKE_OPEN = re.compile(r"(?:\bsk-[A-Za-z0-9_\-*]*|\bsk?)\Z")  # a key-like token still arriving
_OPEN_MAX = 512  # a key-like token longer than this is not held back any more


class StreamScrub:
    """Scrubs one stream of chunks so that no concatenation of what it returns holds a secret.

    It holds back the end of the text only while that end could be the start of
    a secret (the longest suffix that is a prefix of one) or of a key-like token
    (`sk-…`), so ordinary text flows on at once; `flush()` returns what is held
    when the stream ends. What it returns is scrubbed like `scrub` would.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.held = ""

    def feed(self, text: str) -> str:
        buf = self.held + text if self.held else text
        for secret in self.secrets:
            if secret in buf:
                buf = buf.replace(secret, "***")
        keep = max(self._open_prefix(buf), self._open_keylike(buf))
        if keep:
            self.held, buf = buf[len(buf) - keep :], buf[: len(buf) - keep]
        else:
            self.held = ""
        return _KEYLIKE.sub(r"\1***", buf) if "sk-" in buf else buf

    def flush(self) -> str:
        out, self.held = scrub(self.held, self.secrets), ""
        return out

    def _open_prefix(self, buf: str) -> int:
        """Length of the longest end of `buf` that begins some secret."""
        longest = 0
        for secret in self.secrets:
            i = buf.find(secret[0], max(0, len(buf) - len(secret) + 1))
            while i != -1 and len(buf) - i > longest:
                if secret.startswith(buf[i:]):
                    longest = len(buf) - i
                    break
                i = buf.find(secret[0], i + 1)
        return longest

    @staticmethod
    def _open_keylike(buf: str) -> int:
        if not buf.endswith(("s", "k", "-")) and "sk-" not in buf[-_OPEN_MAX:]:
            return 0  # cheap exit: no key-like token can be open at the end
        match = _KEYLIKE_OPEN.search(buf, max(0, len(buf) - _OPEN_MAX - 1))
        return len(match.group()) if match and len(match.group()) <= _OPEN_MAX else 0
