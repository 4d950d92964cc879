"""What making text inert (team/sanitize.py, issue 12.1) costs the paths that show text.

    python bench/bench_sanitize.py

Rows:
- the sanitiser per streamed chunk (`InertStream.feed`, what the transcript and the
  headless printer call for model tokens) against what the transcript spends per
  chunk (bench_tui's batched transcript, measured here in the same run, sanitiser
  included): goal ≤ 0.05×, i.e. sanitising adds < 5 % to transcript throughput;
- a tool's live output as the transcript re-shows it on each chunk (its last
  8,000 characters): `inert` against building the Rich `Text` it goes into (≤ 0.5×);
- `inert` throughput on clean text (the common case: one regex scan, no copy) and
  on hostile text (a control sequence every ~40 characters), for information;
- the app's last-resort line filter (tui/inert.py) per rendered line of ten
  segments, for information (Textual caches a filtered line with the line).
Follows the bench/common.py protocol.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Row, emit, info, ratio_at_most  # noqa: E402
from team.sanitize import InertStream, inert  # noqa: E402

PROSE = (
    "The mean of the 100 points is 50.12 and the standard deviation 9.88; two outliers "
    "(75.43 and 24.68) lie outside 1.5 IQR.\n\tdf.describe() → count 100, 均值 50.12\n"
)
HOSTILE = "clip\x1b]52;c;cHduZWQ=\x07 title\x1b]0;x\x07 \x1b[2J \x9b2J bidi\u202e done\r\n"


def _best(fn, rounds: int = 7) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _chunks() -> list[str]:
    from bench.bench_tui import CHUNK, CHUNKS

    return [CHUNK + ("\n\n" if i % 40 == 39 else "") for i in range(CHUNKS)]


def _per_chunk_us(chunks: list[str]) -> float:
    def feed_all() -> None:
        stream = InertStream()
        for chunk in chunks:
            stream.feed(chunk)
        stream.flush()

    return _best(feed_all) * 1e6 / len(chunks)


def _mb_per_s(text: str) -> float:
    return len(text.encode()) / 2**20 / _best(lambda: inert(text))


def _output_tail_us() -> tuple[float, float]:
    from rich.text import Text

    tail = (PROSE * 80)[-8_000:]
    repeat = 200
    ours = _best(lambda: [inert(tail) for _ in range(repeat)]) * 1e6 / repeat
    text = _best(lambda: [Text(tail, style="dim") for _ in range(repeat)]) * 1e6 / repeat
    return ours, text


def _filter_line_us() -> float:
    from rich.segment import Segment
    from rich.style import Style
    from textual.color import Color

    from tui.inert import CONTROL_FILTER

    line = [Segment(PROSE[i * 16:(i + 1) * 16], Style(color="red")) for i in range(10)]
    background, repeat = Color(0, 0, 0), 2_000
    return _best(lambda: [CONTROL_FILTER.apply(line, background) for _ in range(repeat)]) * 1e6 / repeat


def run() -> list[Row]:
    from bench.bench_tui import _stream_transcript, _with_app

    chunks = _chunks()
    transcript_us = 1e6 / asyncio.run(_with_app(_stream_transcript))
    chunk_us = _per_chunk_us(chunks)
    tail_us, text_us = _output_tail_us()
    clean = PROSE * 10_000  # ~1.7 MB
    hostile = HOSTILE * 20_000  # ~1.4 MB
    return [
        ratio_at_most("sanitiser per streamed chunk vs transcript per chunk", chunk_us, transcript_us, 0.05, "µs",
                      note=f"InertStream.feed over bench_tui's {len(chunks):,} chunks ÷ the batched transcript's "
                           "time per chunk (which includes it)"),
        ratio_at_most("tool output tail (8,000 chars) per chunk: inert vs its Rich Text", tail_us, text_us, 0.5,
                      "µs", note="the transcript re-shows a running tool's last 8,000 characters on each chunk"),
        info("inert throughput, clean text", _mb_per_s(clean), "MB/s", note="no control characters: no copy"),
        info("inert throughput, hostile text", _mb_per_s(hostile), "MB/s",
             note="a control sequence every ~40 characters"),
        info("TUI control filter per rendered line", _filter_line_us(), "µs", note="10 clean segments, 160 cells"),
    ]


if __name__ == "__main__":
    emit(run(), f"bench_sanitize: python {sys.version.split()[0]}")
