"""Preview of one sandbox file: the right widget for its kind.

text/code → highlighted `Syntax`; CSV → `DataTable` (first 1,000 rows);
JSON → pretty-printed and highlighted; Markdown → `Markdown`; PNG/JPEG →
textual-image widget; anything binary → a description (size, type), never a
dump. The caller reads at most `MAX_PREVIEW_BYTES`, so huge files are shown
partially and say so. The file's name and every text shown from it are inert
(tui/inert.py): its escape sequences are shown, never sent to the terminal.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from team.filetypes import binary_kind, human_size, is_binary
from tui.format import SYNTAX_THEME, extension, lexer_for
from tui.inert import inert, inert_markup, inert_text
from tui.widgets.images import fit, make_image

MAX_PREVIEW_BYTES = 1_000_000
MAX_CSV_ROWS = 1_000
MAX_TEXT_LINES = 3_000

IMAGE_EXTS = {"png", "jpg", "jpeg", "gif", "bmp", "webp"}
def describe_binary(data: bytes) -> str:
    return binary_kind(data) or "binary data"


def classify(path: str, data: bytes) -> str:
    """The preview kind: image, csv, json, markdown, text, binary or empty."""
    ext = extension(path)
    if not data:
        return "empty"
    if ext in IMAGE_EXTS or data.startswith((b"\x89PNG", b"\xff\xd8\xff")):
        return "image"
    if is_binary(data):
        return "binary"
    if ext in ("csv", "tsv"):
        return "csv"
    if ext in ("json", "geojson") or ext == "ipynb":
        return "json"
    if ext in ("md", "markdown"):
        return "markdown"
    return "text"


def parse_csv(text: str, delimiter: str, truncated: bool) -> tuple[list[str], list[list[str]], int]:
    """Header, the first MAX_CSV_ROWS rows and the total number of data rows seen."""
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if truncated and rows:
        rows.pop()  # the last line was probably cut
    if not rows:
        return [], [], 0
    if all(_is_number(cell) for cell in rows[0]):  # no header line (e.g. np.savetxt)
        header, body = [f"col{i + 1}" for i in range(len(rows[0]))], rows
    else:
        header, body = rows[0], rows[1:]
    return header, body[:MAX_CSV_ROWS], len(body)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


class Preview(Vertical):
    """Title line + a body replaced for each file."""

    BINDINGS = [  # on a table the sandbox read (the app does the reading)
        Binding("s", "app.table_stats", "Stats", show=False),
        Binding("left_square_bracket", "app.table_sheet(-1)", "Sheet", show=False),
        Binding("right_square_bracket", "app.table_sheet(1)", "Sheet", show=False),
    ]

    DEFAULT_CSS = """
    Preview { height: 1fr; }
    Preview #preview-title { height: auto; padding: 0 1; background: $boost; }
    Preview #preview-body { height: 1fr; }
    Preview #preview-body > Static { width: auto; min-width: 100%; }
    Preview #preview-note { height: auto; padding: 0 1; color: $text-muted; }
    Preview DataTable { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path: str | None = None
        self.kind: str | None = None
        self.table: dict[str, Any] = {}  # what the sandbox sent for a "table" preview

    def compose(self):
        yield Static(Text("Select a file to preview it", style="dim"), id="preview-title")
        yield VerticalScroll(id="preview-body")
        yield Static("", id="preview-note")

    def on_mount(self) -> None:
        self.query_one("#preview-note").display = False

    async def clear(self, note: str = "") -> None:
        """Show nothing; `note` says why (e.g. the sandbox was replaced) instead of the usual hint."""
        self.path = self.kind = None
        title = Text(note, style="yellow") if note else Text("Select a file to preview it", style="dim")
        self.query_one("#preview-title", Static).update(title)
        await self.query_one("#preview-body").remove_children()
        self.query_one("#preview-note").display = False

    async def show_message(self, path: str, message: str, style: str = "red") -> None:
        self.query_one("#preview-title", Static).update(inert_text(path, style="bold"))
        body = self.query_one("#preview-body")
        await body.remove_children()
        await body.mount(Static(inert_text(message, style=style)))
        self.path, self.kind = path, "error"
        self.query_one("#preview-note").display = False

    async def show_table(self, path: str, result: dict[str, Any], size: int) -> None:
        """A table the sandbox read (Parquet, Excel, a large CSV): first rows, row count,
        sheets and, when asked with `s`, column statistics."""
        from textual.widgets import DataTable

        self.table = result
        title = inert_text(path, style="bold")
        title.append(f"  {human_size(size)} · table", style="dim")
        if result.get("sheets"):
            title.append(inert(f" · sheet {result.get('sheet')} of {len(result['sheets'])}"), style="dim")
        self.query_one("#preview-title", Static).update(title)
        body = self.query_one("#preview-body", VerticalScroll)
        await body.remove_children()
        stats = result.get("stats")
        columns = stats["columns"] if stats else [f"{c} ({t})" for c, t in zip(result["columns"], result["dtypes"], strict=False)]
        rows = stats["rows"] if stats else result["rows"]
        table: DataTable = DataTable(zebra_stripes=True, cursor_type="row")
        table.add_columns(*(inert_text(c) for c in columns))
        for row in rows:
            table.add_row(*(inert_markup(str(cell)) for cell in (list(row) + [""] * len(columns))[: len(columns)]))
        await body.mount(table)
        self.path, self.kind = path, "table"
        total = result.get("total")
        if stats:
            note = f"column statistics over {stats.get('over', 0):,} rows · s: back to the rows"
        else:
            note = f"first {len(rows):,} rows" + (f" of {total:,}" if total is not None else "") + " · s: column statistics"
        if len(result.get("sheets") or []) > 1:
            note += " · [ ]: other sheets"
        note_widget = self.query_one("#preview-note", Static)
        note_widget.update(inert(note))
        note_widget.display = True

    async def show(self, path: str, data: bytes, size: int | None = None) -> str:
        """Render `data` (the first bytes of `path`); returns the kind chosen."""
        size = len(data) if size is None else size
        truncated = size > len(data)
        kind = classify(path, data)
        title = inert_text(path, style="bold")
        title.append(f"  {human_size(size)} · {kind}", style="dim")
        if truncated:
            title.append(f" · first {human_size(len(data))} shown", style="yellow")
        self.query_one("#preview-title", Static).update(title)
        body = self.query_one("#preview-body", VerticalScroll)
        note = self.query_one("#preview-note", Static)
        note.display = False
        await body.remove_children()
        widgets, note_text = self._build_body(path, kind, data, truncated)
        if note_text:
            note.update(note_text)
            note.display = True
        await body.mount_all(widgets)
        body.scroll_home(animate=False)
        self.path, self.kind = path, kind  # once it shows (tests and actions read these)
        return kind

    def _build_body(self, path: str, kind: str, data: bytes, truncated: bool):
        from textual.widgets import DataTable, Markdown

        ext = extension(path)
        if kind == "empty":
            return [Static(Text("(empty file)", style="dim"))], ""
        if kind == "image":
            image = make_image(data, classes="preview-image")
            if image is not None:
                fit(image, (self.query_one("#preview-body").size.width or 60) - 1)
                return [image], ""
            return [Static(Text(f"{describe_binary(data)} — images are off or unreadable", style="dim"))], ""
        if kind == "binary":
            text = Text(f"{describe_binary(data)}, {human_size(len(data))}+ — not shown.\n", style="bold")
            text.append("Press ctrl+s to save it to the host.", style="dim")
            return [Static(text)], ""
        source = data.decode("utf-8", errors="replace")
        if kind == "csv":
            header, rows, total = parse_csv(source, "\t" if ext == "tsv" else ",", truncated)
            table: DataTable = DataTable(zebra_stripes=True, cursor_type="row")
            width = max([len(header)] + [len(r) for r in rows[:50]] or [0])
            columns = header + [f"col{i + 1}" for i in range(len(header), width)]
            table.add_columns(*(inert_text(column) for column in columns))
            for row in rows:  # str cells are read as markup: escaped, and inert
                table.add_row(*(inert_markup(cell) for cell in (row + [""] * (width - len(row)))[:width]))
            more = total - len(rows)
            note = f"{len(rows):,} rows shown"
            if more > 0:
                note += f", {more:,} more rows"
            if truncated:
                note += " (file read partially)"
            return [table], note
        if kind == "json":
            try:
                source = json.dumps(json.loads(source), ensure_ascii=False, indent=2)
            except ValueError:
                pass  # partial or invalid JSON: show as it is
            return [Static(self._syntax(source, "json"))], ""
        if kind == "markdown":
            return [Markdown(inert(source))], ""
        return [Static(self._syntax(source, lexer_for(path)))], ""

    @staticmethod
    def _syntax(text: str, lexer: str) -> Any:
        from rich.syntax import Syntax

        text = inert(text)
        lines = text.splitlines()
        if len(lines) > MAX_TEXT_LINES:
            text = "\n".join(lines[:MAX_TEXT_LINES]) + f"\n… {len(lines) - MAX_TEXT_LINES} more lines"
        return Syntax(text, lexer, theme=SYNTAX_THEME, line_numbers=True, word_wrap=False)
