"""Keep keys out of everything a person or a file sees.

One function for the whole engine: run events (screen, `--json`), run records,
error lines and doctor output all pass through `scrub`.
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
