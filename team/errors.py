"""One line of an error, for a status bar, a toast, a record or a tool's reply.

Written once here (the engine and the app used five copies that differed in
blank-line handling and length): the first non-blank line of the message, else
the exception's class name, cut to `limit` characters with an ellipsis.
"""

from __future__ import annotations


def one_line(exc: BaseException | str, limit: int = 200) -> str:
    """The first non-blank line of `exc` (its class name when the message is empty)."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
