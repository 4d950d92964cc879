"""The app's commands: one table feeds the key bindings (and the footer) and the
command palette (ctrl+p), so a command is added once and shows in both.

`key` "" means palette only; `title` "" means keys only (Textual's own palette
already offers Quit, for one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from textual.app import SystemCommand
from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Command:
    action: str
    key: str = ""  # Textual key spec ("ctrl+b,f2"); "" for the palette only
    footer: str = ""  # the footer's short label (it drops what does not fit)
    title: str = ""  # the palette's name for it
    help: str = ""  # the palette's line under the name; the keys are appended
    tooltip: str = ""
    show: bool = True  # in the footer
    main_only: bool = True  # only on the main screen (modals and the palette keep their keys)
    keys_shown: str = ""  # for a palette-only command, the keys that do it elsewhere
    priority: bool = True  # before the focused widget (the task editor would take the key otherwise)


COMMANDS: tuple[Command, ...] = (
    Command("send_from_editor", title="Send task", help="Start a run with the task in the editor",
            keys_shown="enter"),
    Command("stop", "escape", "Stop", "Stop run", "Graceful stop; again to force",
            tooltip="Stop at the end of this turn; press again to stop at once"),
    Command("restart", "ctrl+r", "Restart", "Restart run", "Run the same task again with a fresh team"),
    Command("new_task", "ctrl+n", "New task", "New task", "Clear the transcript, keep or reset the sandbox",
            tooltip="A new conversation (keep or reset the sandbox)"),
    Command("add_data", "ctrl+o", "Data", "Upload data", "Copy your files or folders into /home/user/data/",
            tooltip="Upload your files into /home/user/data/"),
    Command("toggle_files", "ctrl+b,f2", "Files", "Toggle files pane", "Show or hide the sandbox files",
            tooltip="Show or hide the sandbox files"),
    Command("save_file", "ctrl+s", "Save", "Save file", "Copy the selected sandbox file to ./sbteam-output",
            tooltip="Save the selected file to ./sbteam-output"),
    Command("history", "f4", "History", "History", "Past runs: search, open read-only, resume, export"),
    Command("export", "ctrl+e", "Export", tooltip="Export the run as Markdown or a notebook"),
    Command("export_md", title="Export run as Markdown", help="Transcript with code, outputs and images",
            keys_shown="ctrl+e, m"),
    Command("export_ipynb", title="Export run as notebook", help="The code cells that ran, with outputs, as .ipynb",
            keys_shown="ctrl+e, i"),
    Command("toggle_approve", "f6", "Approval", "Toggle approval mode", "Approve, edit or reject code before it runs",
            tooltip="Approve, edit or reject code before it runs"),
    Command("app.focus_next", "tab", "Next pane", show=False, main_only=False, priority=False),
    Command("scroll_bottom", "ctrl+end,f3", "Follow", "Follow transcript", "Scroll to the end and keep following",
            show=False, priority=False),
    Command("quit", "ctrl+q", "Quit", main_only=False),
)

MAIN_ONLY = frozenset(c.action for c in COMMANDS if c.main_only)


def bindings() -> list[BindingType]:
    """The app's BINDINGS, in the footer's order."""
    return [
        Binding(c.key, c.action, c.footer, show=c.show, tooltip=c.tooltip, priority=c.priority)
        for c in COMMANDS
        if c.key
    ]


def _keys(command: Command) -> str:
    if command.keys_shown:
        return command.keys_shown
    return " / ".join("esc" if key == "escape" else key for key in command.key.split(","))


def system_commands(target: object) -> Iterator[SystemCommand]:
    """The palette's entries, each calling `target.action_<action>` as its key would."""
    for command in COMMANDS:
        if command.title:
            callback: Callable[[], object] = getattr(target, f"action_{command.action}")
            yield SystemCommand(command.title, f"{command.help} ({_keys(command)})", callback)
