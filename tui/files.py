"""The sandbox's files in the app: the tree's listing, the preview, saving a file,
and showing or hiding the file pane (mixed into `SbteamApp`).

Every call into the sandbox runs in its own worker ("files", "preview", "save"),
so keys never wait on it; bursts of `FileTree.Stale` collapse into one listing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.css.query import NoMatches
from textual.widgets import Tree

from team.errors import one_line
from tui.panes import Panes
from tui.widgets.task_input import TaskInput

if TYPE_CHECKING:
    from team.api import Controller


class SandboxFiles(Panes):
    """The file pane's glue: list, preview, save, toggle."""

    ctrl: Controller | None
    run_id: str | None
    output_dir: Path
    config_error: Any

    def on_file_tree_stale(self) -> None:
        """`FileTree.Stale` (by handler name: the tree's module is imported with the pane, after
        the first paint)."""
        self._refresh_files()

    @work(exclusive=True, group="files", exit_on_error=False)
    async def _refresh_files(self) -> None:
        """Re-list the sandbox folder; bursts of changes collapse into one call."""
        await asyncio.sleep(0.05)
        ctrl = await self._controller()
        try:
            entries = await ctrl.list_files()
        except Exception as exc:  # a sandbox that is gone or restarting: the next change lists again
            self.log.warning(f"list_files failed: {exc}")
            return
        self.file_tree.set_entries(entries)
        self.update_files_hint()

    async def _forget_sandbox_files(self, note: str) -> None:
        """The sandbox is being replaced: empty the tree and the preview, and say why."""
        self.workers.cancel_group(self, "files")  # a listing of the old sandbox must not land
        self.workers.cancel_group(self, "preview")
        self.file_tree.unseen.clear()
        self.file_tree.set_entries([])
        await self.preview.clear(note)
        self.update_files_hint()

    @on(Tree.NodeSelected, "#files")
    def _file_selected(self, event: Tree.NodeSelected) -> None:
        entry = event.node.data
        if entry is None or entry.is_dir:
            return
        self.file_tree.mark_seen(entry.path)
        self.update_files_hint()
        self._show_preview(entry)

    @work(exclusive=True, group="preview", exit_on_error=False)
    async def _show_preview(self, entry: Any, sheet: str | int = 0, stats: bool = False) -> None:
        from tui.widgets.preview import MAX_PREVIEW_BYTES

        ctrl = await self._controller()
        if _sandbox_table(entry.path, entry.size):
            await self.preview.show_message(entry.path, "reading the table in the sandbox…", style="dim")
            try:
                result = await ctrl.table_preview(entry.path, sheet=sheet, stats=stats)
            except Exception as exc:  # said in the preview pane
                await self.preview.show_message(entry.path, f"Cannot read {entry.path} as a table: {one_line(exc)}")
                return
            if "error" in result:
                await self.preview.show_message(entry.path, f"Cannot read {entry.path} as a table: {result['error']}")
                return
            await self.preview.show_table(entry.path, result, entry.size)
            return
        try:
            data = await ctrl.read_file(entry.path, max_bytes=MAX_PREVIEW_BYTES)
        except Exception as exc:  # said in the preview pane
            await self.preview.show_message(entry.path, f"Cannot read {entry.path}: {exc}")
            return
        await self.preview.show(entry.path, data, size=max(entry.size, len(data)))

    def action_table_stats(self) -> None:
        """`s` on a table preview: column statistics, or back to the rows."""
        preview = self.preview
        entry = self.file_tree.entries.get(preview.path or "") if preview.kind == "table" else None
        if entry is not None:
            self._show_preview(entry, sheet=preview.table.get("sheet") or 0, stats="stats" not in preview.table)

    def action_table_sheet(self, step: int) -> None:
        """`[` / `]` on an Excel preview: the previous or next sheet."""
        preview = self.preview
        sheets = preview.table.get("sheets") or [] if preview.kind == "table" else []
        entry = self.file_tree.entries.get(preview.path or "")
        if entry is not None and len(sheets) > 1:
            current = sheets.index(preview.table.get("sheet")) if preview.table.get("sheet") in sheets else 0
            self._show_preview(entry, sheet=sheets[(current + step) % len(sheets)])

    async def _read_image(self, path: str) -> bytes:
        ctrl = await self._controller()
        return await ctrl.read_file(path, max_bytes=5_000_000)

    def action_save_file(self) -> None:
        """Ctrl+S: copy the selected sandbox file to ./sbteam-output/<run id>/."""
        path = self.file_tree.selected_path or self.preview.path
        entry = self.file_tree.entries.get(path or "")
        if not path or self.ctrl is None or (entry is not None and entry.is_dir):
            self.notify("Select a file in the sandbox tree first.", severity="warning")
            return
        self._save(path)

    @work(group="save", exit_on_error=False)
    async def _save(self, path: str) -> None:
        ctrl = await self._controller()
        dest = self.output_dir / (self.run_id or ctrl.run_id or "sandbox")
        try:
            saved = await ctrl.save_file(path, dest)
        except Exception as exc:  # said in a toast
            self.notify(f"Cannot save {path}: {exc}", severity="error")
            return
        self.notify(f"Saved {path} → {saved}", title="File saved", timeout=8)

    # -- the pane ---------------------------------------------------------------------

    def action_toggle_files(self) -> None:
        """Ctrl+B / F2: hide or show the file pane; when narrow, show it instead of the transcript."""
        main = self.screen_stack[0]
        side = main.query_one("#side")
        if main.has_class("-narrow"):
            opening = not main.has_class("-files-open")
            main.set_class(opening, "-files-open")
        else:
            opening = main.has_class("-files-hidden")
            main.set_class(not opening, "-files-hidden")
        if opening:
            self.call_after_refresh(self._focus_files)
        elif self.focused is not None and side in self.focused.ancestors_with_self:
            main.query_one(TaskInput).focus()
        self.update_files_hint()

    def _focus_files(self) -> None:
        """Focus the tree once it is mounted (it comes a frame after the first paint)."""
        if self.side_ready.is_set():
            self.file_tree.focus()
        else:
            self.call_after_refresh(self._focus_files)

    @property
    def files_shown(self) -> bool:
        main = self.screen_stack[0]
        if main.has_class("-narrow"):
            return main.has_class("-files-open")
        return not main.has_class("-files-hidden")

    def update_files_hint(self) -> None:
        """While the file pane is hidden, the transcript's frame says how to show it (and what is new)."""
        if self.config_error is not None:
            return
        try:
            transcript, tree = self.transcript, self.file_tree
        except (NoMatches, IndexError):  # not composed yet
            return
        if self.files_shown:
            transcript.border_subtitle = ""
            return
        new = len(tree.unseen & set(tree.entries))
        files = f"{new} new file{'s' if new != 1 else ''}" if new else "files"
        transcript.border_subtitle = f"{files}: ctrl+b"

    if TYPE_CHECKING:  # provided by the other parts of the app
        async def _controller(self) -> Controller: ...


def _sandbox_table(path: str, size: int) -> bool:
    """Read in the sandbox: formats the host does not parse, and CSV/TSV too large to read here."""
    from team.tables import is_table
    from tui.widgets.preview import MAX_PREVIEW_BYTES

    ext = path.rsplit(".", 1)[-1].lower()
    if not is_table(path) or ext == "json":  # JSON: shown as text (partially when large)
        return False
    return ext not in ("csv", "tsv") or size > MAX_PREVIEW_BYTES
