"""The user's data into the sandbox: Ctrl+O's picker, a pasted or dropped path,
`--data` at start-up (mixed into `SbteamApp`). Uploads go to /home/user/data/;
above 500 MB the user is asked first, above 50 MB a progress bar shows."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from textual import on, work

from team.errors import one_line
from tui.panes import Panes
from tui.widgets.task_input import TaskInput

if TYPE_CHECKING:
    from team.api import Controller

PROGRESS_ABOVE = 50 << 20  # bytes: a progress bar for uploads larger than this


class DataUpload(Panes):
    """Pick, confirm and upload the user's files."""


    def action_add_data(self) -> None:
        """Ctrl+O: pick host files or folders to upload (also while a run goes on)."""
        from tui.screens.data_picker import DataPickerScreen

        def chosen(paths: list[str] | None) -> None:
            if paths:
                self.upload_data(paths)

        self.push_screen(DataPickerScreen(), chosen)

    @on(TaskInput.PathsPasted)
    def _paths_pasted(self, event: TaskInput.PathsPasted) -> None:
        """A pasted or dropped path: offer to upload it instead of typing it into the task."""
        from tui.screens.data_picker import UploadPastedModal

        def answered(choice: str | None) -> None:
            if choice == "upload":
                self.upload_data(event.paths)
            elif choice == "text":
                event.input.insert(event.text)

        self.push_screen(UploadPastedModal(event.paths), answered)

    @work(group="upload", exit_on_error=False)
    async def upload_data(self, paths: list[str], consent: bool = False) -> None:
        """Upload host paths into /home/user/data/ (asks above 500 MB; a bar for large ones)."""
        from team.uploads import ASK_ABOVE, UploadError, collect
        from tui.screens.data_picker import ConfirmUploadModal, UploadProgressScreen

        ctrl = await self._controller()
        try:
            plan = await asyncio.to_thread(collect, paths)
        except UploadError as exc:
            self.notify(f"Cannot upload: {exc}", severity="error", timeout=10)
            return
        if plan.total > ASK_ABOVE and not consent:
            answer = await self.push_screen_wait(
                ConfirmUploadModal(f"The upload is {plan.total / (1 << 20):,.0f} MB (over 500 MB). Upload it?")
            )
            if answer != "yes":
                return
            consent = True
        bar = UploadProgressScreen(plan.total) if plan.total > PROGRESS_ABOVE else None
        if bar is not None:
            await self.push_screen(bar)
        main = threading.get_ident()

        def progress(done: int, total: int) -> None:
            if bar is None:
                return
            if threading.get_ident() == main:
                bar.advance_to(done)
            else:
                self.call_from_thread(bar.advance_to, done)

        try:
            done = await ctrl.add_data(paths, progress=progress, consent=consent)
        except Exception as exc:  # said in a toast; nothing was half-announced to the team
            self.notify(f"Upload failed: {one_line(exc)}", severity="error", timeout=15)
            return
        finally:
            if bar is not None:
                bar.dismiss()
        names = ", ".join(d["path"] for d in done[:4]) + (" …" if len(done) > 4 else "")
        self.transcript.add_note(
            f"📥 uploaded {len(done)} file(s): {names} — the team is told about it with its next question", "bold"
        )
        self.file_tree.mark_changed([d["path"] for d in done], [], [])  # new in the tree, like the team's files
        self._refresh_files()

    if TYPE_CHECKING:  # provided by the other parts of the app
        async def _controller(self) -> Controller: ...
        def _refresh_files(self) -> object: ...
