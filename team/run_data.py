"""The run controller's sandbox side that is not a run: the user's data and files.

A mixin of `RunController` (kept apart so the controller's module holds only the
life-cycle of a run): uploads into /home/user/data/ with their record and
description, and the files pane's reads. It relies on the controller's `session`,
`settings`, `state`, `_emit`, `_background` and the upload bookkeeping set up in
its `__init__`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import events as ev
from .api import RunState
from .records import why
from .session import FileEntry

if TYPE_CHECKING:
    from .config import Settings
    from .session import CodeSession


class DataAndFiles:
    session: CodeSession
    settings: Settings
    state: RunState
    uploads: list[dict[str, Any]]
    _undescribed: list[str]
    _pending_events: list[ev.Event]
    _fingerprints: set[asyncio.Task[None]]
    _background: set[asyncio.Task[Any]]
    _finished: asyncio.Event

    if TYPE_CHECKING:  # provided by RunController
        def _emit(self, event: ev.Event) -> None: ...
        async def outputs_saved(self) -> None: ...

    async def warm_up(self) -> None:
        """Start the sandbox now so the first tool call doesn't wait for it."""
        await self.session.warm_up()

    async def reset_sandbox(self) -> None:
        await self.outputs_saved()  # the last turn's files are copied out of this sandbox first
        await self.session.reset()
        self.uploads, self._undescribed = [], []

    async def add_data(self, paths: list[str], *, progress: Any = None, consent: bool = False) -> list[dict[str, Any]]:
        """Upload the user's files into /home/user/data/ (any time, also during a run).

        The upload is recorded (DataUploaded: names, sizes, sha256) and the team is
        told what the data is at the start of its next turn. `consent` must be True
        for more than uploads.ASK_ABOVE bytes; uploads.UploadError says why not.
        """
        from . import uploads

        plan = await asyncio.to_thread(uploads.collect, paths)
        if plan.needs_consent and not consent:
            raise uploads.UploadError(
                f"the upload is {uploads._size(plan.total)}, over {uploads._size(uploads.ASK_ABOVE)}: confirm to go on"
            )
        copies = await uploads.copy_in(self.session, plan, progress)
        done = [c.entry for c in copies]
        known = {u["path"] for u in done}
        self.uploads = [u for u in self.uploads if u["path"] not in known] + done
        self._undescribed = [p for p in self._undescribed if p not in known] + [u["path"] for u in done]
        # The sha256 for the record follows the copy (hashing costs more than a kernel
        # copy); the next turn awaits it before it starts (`recorded_uploads`).
        skipped = [{"path": p, "reason": r} for p, r in plan.skipped]
        task = asyncio.create_task(self._record_upload(copies, skipped))
        self._fingerprints.add(task)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(self._fingerprints.discard)
        return done

    async def _record_upload(self, copies: list[Any], skipped: list[dict[str, str]]) -> None:
        from . import uploads

        await uploads.fingerprint(copies)
        event = ev.DataUploaded(files=[c.entry for c in copies], skipped=skipped)
        if self.state in (RunState.STARTING, RunState.RUNNING) and not self._finished.is_set():
            self._emit(event)
        else:
            self._pending_events.append(event)

    async def recorded_uploads(self) -> None:
        """Wait until every upload so far has its sha256 and its DataUploaded event."""
        pending = list(self._fingerprints)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _with_data_description(self, task: str) -> str:
        """The task, after a description of data the team has not been told about yet
        (computed inside the sandbox: shape, columns, types, missing values, rows)."""
        if not self._undescribed:
            return task
        from . import uploads

        paths, self._undescribed = self._undescribed, []
        try:
            items = await uploads.describe(self.session, paths)
        except Exception as exc:  # the task still goes: the files are there
            items = [{"path": p, "error": why(exc)} for p in paths]
        return uploads.description_text(items, self.settings.prompts) + "\n\n" + task

    async def list_files(self) -> list[FileEntry]:
        return await self.session.list_entries()

    async def read_file(self, path: str, max_bytes: int = 1_000_000) -> bytes:
        return await self.session.read_bytes(path, max_bytes)

    async def table_preview(self, path: str, *, sheet: str | int = 0, stats: bool = False) -> dict[str, Any]:
        """The first rows (or column statistics) of a table in the sandbox, read there."""
        from . import tables

        await self.session.initialize()
        return await tables.preview(self.session.sandbox, path, sheet=sheet, stats=stats)

    async def save_file(self, path: str, dest_dir: Path) -> Path:
        return await self.session.save_file(path, dest_dir)
