"""The app's side of "what reaches a person is inert" (team/sanitize.py).

Every widget that shows text from outside the app (model text, code, sandbox
output, file names and contents, error lines, the task, run records) passes it
through `team.sanitize.inert` where it becomes a Rich/Textual renderable, so a
control sequence is *shown* (`␛]0;…␇`) instead of sent to the terminal. The
app's own styling is Rich/Textual styles, never escape sequences in strings.

`ControlFilter` is the last resort behind that: a line filter on every rendered
line of every widget (`SbteamApp.get_line_filters`) that removes whatever of
`team.sanitize.CONTROLS` still reached a line (a widget that forgot `inert`,
text typed or pasted into an input, Textual's own chrome). It removes rather
than shows because Rich measured those characters as zero cells wide, and a
line must keep the width it was laid out with; lone surrogates (one cell) become
U+FFFD. Image widgets that send Sixel data render their own lines and are not
filtered.
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.segment import Segment
from rich.text import Text
from textual.color import Color
from textual.content import Content
from textual.filter import LineFilter

from team.sanitize import CONTROLS, inert

__all__ = ["ControlFilter", "inert", "inert_content", "inert_markup", "inert_text"]


def inert_text(text: object, style: str = "") -> Text:
    """A Rich `Text` of `text` made inert (never parsed as markup)."""
    return Text(inert(str(text)), style=style)


def inert_content(text: object) -> Content:
    """A Textual `Content` of `text` made inert (for APIs that would parse a str as markup)."""
    return Content(inert(str(text)))


def inert_markup(text: object) -> str:
    """`text` made inert and escaped for APIs that read a str as markup (DataTable cells)."""
    return escape(inert(str(text)))


def _remove(match: re.Match[str]) -> str:
    return "\ufffd" if "\ud800" <= match.group() <= "\udfff" else ""


class ControlFilter(LineFilter):
    """Removes terminal control characters, bidi overrides and lone surrogates from
    rendered lines (segments that carry a terminal control of their own are kept)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        search = CONTROLS.search
        # The common case, a clean line, is one search of the joined text (a segment
        # carrying a control of its own may match here; the loop below keeps it).
        if not search("".join([segment.text for segment in segments])):
            return segments
        if not any(segment.control is None and search(segment.text) for segment in segments):
            return segments
        cleaned = []
        for segment in segments:
            if segment.control is None and search(segment.text):
                text = CONTROLS.sub(_remove, segment.text)
                if text:
                    cleaned.append(Segment(text, segment.style))
            else:
                cleaned.append(segment)
        return cleaned


CONTROL_FILTER = ControlFilter()
