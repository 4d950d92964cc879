"""The main screen's panes and the approval broker, shared by every part of the app.

The parts mixed into `SbteamApp` (driver, boot, files, data, past runs) derive from
`Panes`, so each reaches the panes the same typed way and none re-declares them. The
panes are looked up on the main screen (not on `self.screen`, which is a modal while
Ctrl+N asks), so events keep rendering under a modal.
"""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import TYPE_CHECKING

from textual.app import App

if TYPE_CHECKING:
    from tui.screens.approval import ApprovalBroker
    from tui.widgets.file_tree import FileTree
    from tui.widgets.preview import Preview
    from tui.widgets.status_bar import StatusBar
    from tui.widgets.transcript import Transcript


class Panes(App[int]):
    side_ready: asyncio.Event  # the file tree and the preview are mounted (a frame after the first paint)

    @property
    def transcript(self) -> Transcript:
        from tui.widgets.transcript import Transcript

        return self.screen_stack[0].query_one(Transcript)

    @property
    def status(self) -> StatusBar:
        from tui.widgets.status_bar import StatusBar

        return self.screen_stack[0].query_one(StatusBar)

    @property
    def file_tree(self) -> FileTree:
        from tui.widgets.file_tree import FileTree

        return self.screen_stack[0].query_one(FileTree)

    @property
    def preview(self) -> Preview:
        from tui.widgets.preview import Preview

        return self.screen_stack[0].query_one(Preview)

    @cached_property
    def approvals(self) -> ApprovalBroker:
        """The controller's approver (imported on first use: not needed for the first paint)."""
        from tui.screens.approval import ApprovalBroker

        return ApprovalBroker(self)
