"""Past runs and how runs are kept: F4's history (open, resume, export), Ctrl+E's
export of the current run, and F6's approval mode (mixed into `SbteamApp`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from team.api import ACTIVE
from tui.panes import Panes

if TYPE_CHECKING:
    from team.api import Controller
    from team.config import Settings


class PastRuns(Panes):
    """History, export and approval mode."""

    settings: Settings | None
    ctrl: Controller | None
    run_id: str | None
    run_state: str
    approve_mode: bool

    def action_history(self) -> None:
        """F4: past runs (search, open read-only, resume, export)."""
        from tui.screens.history import HistoryScreen

        assert self.settings is not None
        self.push_screen(HistoryScreen(self.settings.runs_dir))

    def action_export(self) -> None:
        """Ctrl+E: export the current (or last) run as Markdown or a notebook."""
        if not self.run_id:
            self.notify("No run yet: start one, or export a past run from the history (f4).", severity="warning")
            return
        from tui.screens.history import ExportModal

        self.push_screen(ExportModal(self.run_id), lambda fmt: self._export(fmt) if fmt else None)

    def _export(self, fmt: str) -> None:
        from tui.screens.history import export_and_notify

        if not self.run_id or self.settings is None:
            self.notify("No run to export yet.", severity="warning")
            return
        self.run_worker(export_and_notify(self, self.settings.runs_dir, self.run_id, fmt), group="export")

    def action_export_md(self) -> None:
        self._export("md")

    def action_export_ipynb(self) -> None:
        self._export("ipynb")

    def action_toggle_approve(self) -> None:
        """F6: approval mode on/off (on: each run_code/write_file/install_package waits for you)."""
        self.approve_mode = not self.approve_mode
        if self.ctrl is not None:
            self.ctrl.approve = self.approve_mode
        self.status.set(approve=self.approve_mode)
        if self.approve_mode:
            running = self.run_state in ACTIVE
            when = " from the next run" if running else ""
            self.notify(f"Approval mode on{when}: code waits for approve / edit / reject.", timeout=5)
        else:
            self.approvals.approve_all()
            self.notify("Approval mode off: code runs without asking.", timeout=5)
