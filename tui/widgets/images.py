"""Choosing and loading the textual-image widget class, off the start-up path.

textual-image detects Sixel/Kitty support by querying the terminal when
`textual_image.widget` is first imported (up to three queries with 0.1 s
timeouts) and imports numpy (~0.16 s) — both before the first paint if done
naively. Instead we ask once: a Kitty graphics query followed by DA1, which every
terminal answers, so no timeout is spent on a terminal that supports neither.
The query is sent by `ask_terminal()` as the CLI starts and its answer read by
`detect()` (in `run_app`, while we still own the terminal), so the round trip
overlaps the app's imports and costs the first paint nothing.
The library itself is imported later (`load()`, in a thread after the first
paint) with its own detection disabled.

`SBTEAM_IMAGE` (auto, sixel, tgp, halfcell, unicode, off), from the environment or
`.env` like every other setting, overrides the choice; tests force `halfcell` so
snapshots do not depend on the terminal.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

RENDERERS = ("auto", "sixel", "tgp", "halfcell", "unicode", "off")
_override: str | None = None
_detected: str | None = None  # what `detect()` found for "auto"
_from_dotenv: dict[str, str | None] = {}  # SBTEAM_IMAGE read once from ./.env


def configured() -> str:
    """SBTEAM_IMAGE as set: the environment wins over `.env` (as for all settings)."""
    value = os.environ.get("SBTEAM_IMAGE", "").strip()
    if not value:
        if "value" not in _from_dotenv:
            try:
                from team.config import dotenv_value

                _from_dotenv["value"] = dotenv_value("SBTEAM_IMAGE")
            except Exception:  # a bad .env is reported by the settings, not here
                _from_dotenv["value"] = None
        value = _from_dotenv["value"] or ""
    return value.lower() or "auto"


def set_renderer(name: str | None) -> None:
    """Force a renderer for this process (tests); None goes back to `SBTEAM_IMAGE`/auto."""
    global _override
    if name is not None and name not in RENDERERS:
        raise ValueError(f"image renderer must be one of {', '.join(RENDERERS)}")
    _override = name


def renderer() -> str:
    """The renderer in use: the override, SBTEAM_IMAGE, or what auto-detection found."""
    name = _override or configured()
    if name not in RENDERERS:
        name = "auto"
    if name == "auto":
        return _detected or ("halfcell" if _is_tty() else "unicode")
    return name


def _is_tty() -> bool:
    return bool(sys.__stdout__ and sys.__stdout__.isatty() and sys.__stdin__ and sys.__stdin__.isatty())


QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\\x1b[c"  # a Kitty graphics query, then DA1
_pending: tuple[int, Any, float] | None = None  # (fd, saved termios, deadline) of a query sent, unread


def ask_terminal(timeout: float = 0.2) -> None:
    """Send the image-support query now and read the answer later (`detect()`), so the
    round trip overlaps the app's imports instead of delaying the first paint."""
    global _pending
    name = _override or configured()
    if name != "auto" or _detected is not None or _pending is not None or not _is_tty() or os.name != "posix":
        return
    import termios
    import tty

    try:
        fd = sys.__stdin__.fileno()  # type: ignore[union-attr]  # None only without a terminal, which isatty() ruled out
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)  # no echo of the answer, no waiting for a newline
        sys.__stdout__.write(QUERY)  # type: ignore[union-attr]  # as above
        sys.__stdout__.flush()  # type: ignore[union-attr]  # as above
    except (OSError, termios.error, ValueError) as exc:  # not a usable terminal: halfcell then
        import logging

        logging.getLogger(__name__).debug("image query not sent: %s", exc)
        return
    _pending = (fd, saved, time.monotonic() + timeout)
    import atexit

    atexit.register(_restore)  # should the app never start (a crash on the way), the terminal is given back


def _restore() -> None:
    global _pending
    if _pending is not None:
        import termios

        fd, saved, _ = _pending
        _pending = None
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_answer() -> tuple[bool, bool]:
    """(sixel, kitty graphics) from the answer to `ask_terminal`'s query (DA1 ends it)."""
    global _pending
    import select
    import termios

    assert _pending is not None
    fd, saved, deadline = _pending
    _pending = None
    buf = b""
    try:
        while not re.search(rb"\x1b\[\?[\d;]*c", buf):
            # Past the deadline (the imports took longer), what already came is still read.
            remaining = max(deadline - time.monotonic(), 0.01)
            if not select.select([fd], [], [], remaining)[0]:
                break
            buf += os.read(fd, 1024)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    text = buf.decode("latin-1")
    tgp = bool(re.search(r"\x1b_G[^\x1b]*;OK\x1b\\", text))
    da1 = re.search(r"\x1b\[\?([\d;]*)c", text)
    sixel = bool(da1 and "4" in da1.group(1).split(";"))
    return sixel, tgp


def _cell_size() -> tuple[int, int]:
    """Pixel size of a cell from TIOCGWINSZ, else the VT340's 10×20."""
    try:
        import fcntl
        import struct
        import termios

        rows, cols, width, height = struct.unpack(
            "HHHH", fcntl.ioctl(sys.__stdout__.fileno(), termios.TIOCGWINSZ, b"\0" * 8)  # type: ignore[union-attr]  # as above
        )
        if rows and cols and width and height:
            return width // cols, height // rows
    except (ImportError, OSError, ValueError):  # no terminal (tests, a pipe): the VT340's size below
        return 10, 20
    return 10, 20


def detect() -> None:
    """The terminal's image support (auto only), read before Textual owns stdin: the
    answer to the query `ask_terminal()` sent earlier (sent now if it was not)."""
    global _detected
    name = _override or configured()
    if name != "auto" or _detected is not None:
        return
    if not _is_tty() or os.name != "posix":
        _detected = "unicode" if not _is_tty() else "halfcell"
        return
    ask_terminal()
    sixel = tgp = False
    if _pending is not None:
        try:
            sixel, tgp = _read_answer()
        except (OSError, ValueError) as exc:  # an odd terminal: halfcell works everywhere
            import logging

            logging.getLogger(__name__).debug("image query unanswered: %s", exc)
    _detected = "sixel" if sixel else "tgp" if tgp else "halfcell"


class _NotATerminal:
    """Stands in for sys.__stdout__ so textual-image skips its own terminal queries."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def load() -> Any | None:
    """Import `textual_image.widget` without its terminal queries; None if unavailable."""
    if "textual_image.widget" in sys.modules:
        return sys.modules["textual_image.widget"]
    real = sys.__stdout__
    try:
        from textual_image import _terminal

        if not hasattr(_terminal.get_cell_size, "_result"):
            _terminal.get_cell_size._result = _terminal.CellSize(*_cell_size())  # type: ignore[attr-defined]  # textual-image caches the probe's answer on the function
        sys.__stdout__ = _NotATerminal(real)  # type: ignore[misc, assignment]  # a stand-in while textual-image probes
        import textual_image.widget as tiw
    except Exception as exc:  # images are optional: a broken textual-image means no images, not a crash
        import logging

        logging.getLogger(__name__).warning("textual-image unavailable: %r", exc)
        return None
    finally:
        sys.__stdout__ = real  # type: ignore[misc]  # restoring the real stdout after the probe
    return tiw


def image_class() -> Any | None:
    """The widget class to show an image with, or None when images are off/unavailable."""
    name = renderer()
    if name == "off":
        return None
    tiw = load()
    if tiw is None:
        return None
    return {
        "sixel": tiw.SixelImage,
        "tgp": tiw.TGPImage,
        "halfcell": tiw.HalfcellImage,
        "unicode": tiw.UnicodeImage,
    }[name]


def make_image(data: bytes, **kwargs: Any) -> Any | None:
    """An image widget for PNG/JPEG bytes, or None if images are off or the data is not an image."""
    cls = image_class()
    if cls is None:
        return None
    import io

    from PIL import Image as PILImage

    try:
        picture = PILImage.open(io.BytesIO(data))
        picture.load()
    except Exception:  # not an image PIL can read (any of its decoders' errors): shown as a file instead
        return None
    return cls(picture, **kwargs)


def fit(image: Any, max_width: int) -> Any:
    """Give an image widget an explicit size in cells: at most `max_width` wide, aspect kept.

    textual-image derives "auto" sizes from the laid-out width, which is 0 on
    the first layout pass, so an auto-sized image can end up 0 rows high.
    """
    try:
        from textual_image._terminal import get_cell_size

        cell = get_cell_size()
        cell_w, cell_h = max(1, cell.width), max(1, cell.height)
    except Exception:  # textual-image's own probe failed: assume the VT340's 10×20 cell
        cell_w, cell_h = 10, 20
    width_px, height_px = max(1, image._image_width), max(1, image._image_height)
    width = max(4, min(max_width, round(width_px / cell_w)))
    height = max(1, round(width * cell_w * height_px / width_px / cell_h))
    image.styles.width = width
    image.styles.height = height
    return image
