"""What a cell printed and returned, in E2B's shapes, with the host's cost bounded.

`to_result` turns a Jupyter MIME bundle into the SDK's `Result` as E2B's server
fills it; `OutputKeeper` keeps what an `Execution` holds of stdout/stderr to a
head and a tail with a line saying how much was left out (callbacks still see
every chunk), and `split_not_kept` reads that line back. `ResultKeeper` does the
same for display results: the first ones and the cell's own result are kept. Used by the kernel
backends and by the local sandbox's commands; the SDK is imported on first use.
"""

from __future__ import annotations

import inspect
import re
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from e2b_code_interpreter.models import Result

KEEP_HEAD = 256 << 10  # characters of a cell's stdout (and of stderr) kept from the start
KEEP_TAIL = 256 << 10  # … and from the end
NOT_KEPT = "\n… [{:,} characters of output not kept] …\n"  # OutputKeeper's marker chunk
NOT_KEPT_RE = re.compile(r"\n… \[([\d,]+) characters of output not kept\] …\n")
KEEP_RESULTS = 100  # display results an Execution keeps (the cell's own result comes on top)
KEEP_RESULT_BYTES = 32 << 20  # … and their size in all
RESULTS_NOT_KEPT = "\n… [{:,} display results not kept: an Execution keeps the first {} ({} MB at most)] …\n"

_MIME_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    "e2b/data": "data",
    "e2b/chart": "chart",
}


def to_result(data: dict[str, Any], main: bool, metadata: dict[str, Any] | None = None) -> Result:
    """A Jupyter MIME bundle as the SDK's Result, field by field as E2B's server fills it.

    The display metadata `sbteam/saved_as` (set by the guest's image-save hook)
    is kept in `extra`, so the app knows the picture is already a file.
    """
    from e2b_code_interpreter.models import Result

    data = dict(data)
    saved_as = (metadata or {}).get("sbteam/saved_as")
    if isinstance(saved_as, str):
        data["sbteam/saved_as"] = saved_as
    fields: dict[str, Any] = {}
    for mime, name in _MIME_FIELDS.items():
        if mime in data:
            fields[name] = data.pop(mime)
    text = fields.get("text")
    # E2B's server strips the quotes from a str's repr.
    if isinstance(text, str) and len(text) >= 2 and text.startswith("'") and text.endswith("'"):
        fields["text"] = text[1:-1]
    return Result(is_main_result=main, extra=data or None, **fields)


async def call_handler(handler: Any, arg: Any) -> None:
    """Call a sync or async callback."""
    if handler is None:
        return
    out = handler(arg)
    if inspect.isawaitable(out):
        await out


class OutputKeeper:
    """A list of output chunks (E2B's `Logs.stdout` shape) that keeps only head and tail.

    Once more than `head` characters arrived, later chunks go to a tail of about
    `tail` characters; `finish()` puts one marker chunk between them saying how
    many characters were left out, so a cell printing for minutes costs the host
    at most head + tail.
    """

    def __init__(self, target: list[str], head: int = KEEP_HEAD, tail: int = KEEP_TAIL) -> None:
        self.target = target
        self.head_left = head
        self.tail_limit = tail
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        if self.head_left > 0:
            part = text[: self.head_left]
            self.target.append(part)
            self.head_left -= len(part)
            text = text[len(part) :]
            if not text:
                return
        self.tail.append(text)
        self.tail_size += len(text)
        while self.tail_size > self.tail_limit and len(self.tail) > 1:
            gone = self.tail.popleft()
            self.tail_size -= len(gone)
            self.dropped += len(gone)
        if self.tail_size > self.tail_limit:  # one huge chunk: keep its end
            only = self.tail[0]
            cut = len(only) - self.tail_limit
            self.tail[0] = only[cut:]
            self.tail_size -= cut
            self.dropped += cut

    def finish(self) -> None:
        if self.dropped:
            self.target.append(NOT_KEPT.format(self.dropped))
        self.target.extend(self.tail)
        self.tail.clear()
        self.tail_size = 0
        self.dropped = 0


class ResultKeeper:
    """The results an `Execution` keeps: every `display()` is one, and a loop of them
    (or of 1 MB pictures) made the host keep all of them. The first `KEEP_RESULTS` (up to
    `KEEP_RESULT_BYTES`) and the cell's own result are kept; callbacks still see every
    one. `finish()` adds a line to stderr saying how many were left out."""

    def __init__(self, target: list[Result], count: int = KEEP_RESULTS, size: int = KEEP_RESULT_BYTES) -> None:
        self.target = target
        self.count_left = count
        self.bytes_left = size
        self.dropped = 0

    def add(self, result: Result, data: dict[str, Any]) -> None:
        if result.is_main_result:  # one per cell: always kept, like E2B
            self.target.append(result)
            return
        size = sum(len(v) if isinstance(v, str) else len(repr(v)) for v in data.values())
        if self.count_left > 0 and size <= self.bytes_left:
            self.target.append(result)
            self.count_left -= 1
            self.bytes_left -= size
        else:
            self.dropped += 1

    def finish(self, stderr: list[str]) -> None:
        if self.dropped:
            stderr.append(RESULTS_NOT_KEPT.format(self.dropped, KEEP_RESULTS, KEEP_RESULT_BYTES >> 20))
            self.dropped = 0


def split_not_kept(text: str) -> tuple[str, int]:
    """(text without OutputKeeper's markers, how many characters they said were dropped)."""
    dropped = sum(int(m.replace(",", "")) for m in NOT_KEPT_RE.findall(text))
    return (NOT_KEPT_RE.sub("\n", text), dropped) if dropped else (text, 0)
