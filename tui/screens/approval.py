"""Approval mode: before a tool the registry marks `needs_approval` runs (`run_code`,
`write_file`, `install_package`), the user sees it and approves it, edits it, or
rejects it with a reason the model is told. The argument the user may edit and
its highlighting are the tool's `editable_arg` and `editable_language`
(team/tools/registry.py).

The engine awaits `ApprovalBroker.__call__` inside the tool call, so the broker
never blocks the UI: it pushes an `ApprovalScreen` (through the app's message
queue) and awaits an `asyncio.Future` that the screen's dismiss callback
resolves. If the engine cancels the wait (Esc stop, timeout), or the run
finishes, the screen closes itself.

What the dialog shows is inert (tui/inert.py), the editor included: a control
character in the code is shown as `␛`, `\x9b`…, and an edit approves exactly the
text the user saw and changed (approving without a change runs the original).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, TextArea

from tui.format import SYNTAX_THEME, lexer_for
from tui.inert import inert
from tui.widgets.status_bar import PriorityFooter

Decision = tuple[str, Any]  # ("approve", None) | ("edit", {arg: new}) | ("reject", reason)



def _editable(name: str) -> tuple[str, str]:
    """(the argument the user may edit or "", its lexer), from the tool registry.

    Imported here, not at the top: the registry loads the tools' modules, which
    the app's first paint does not need."""
    from team.tools import editable_arg, editable_language

    return editable_arg(name), editable_language(name)


def _lexer_for(name: str, args: dict[str, Any]) -> str:
    language = _editable(name)[1]
    if not language:  # the file's own: write_file's content is highlighted as its file_path says
        return lexer_for(str(args.get("file_path", "")))
    return language


class ApprovalDialog(VerticalScroll, can_focus=False):
    """The dialog's frame: scrolls the code between its docked title and actions.
    Not a Tab stop: ↑↓ / PgUp / PgDn reach it from the focused button."""


VIEW_HINT = "a approve · e edit · r reject · shift+tab reason · ↑↓ scroll · esc stop run"
EDIT_HINT = "ctrl+s approve your edit · esc undo it · tab reason, buttons"


class ApprovalScreen(ModalScreen[Decision]):
    """Shows one tool call; dismisses with the decision tuple the engine expects.

    Built for small terminals: the title is docked at the top and the reason,
    the buttons and the key hint at the bottom of the dialog, so only the code
    between them scrolls (↑↓ / PgUp / PgDn from the buttons). In edit mode the
    editor fills that middle, ctrl+s (which tmux delivers, unlike ctrl+enter)
    approves the edit and Esc undoes it; a second Esc stops the run.
    """

    BINDINGS = [
        Binding("a", "approve", "Approve"),
        Binding("e", "edit", "Edit"),
        Binding("r", "reject", "Reject"),
        Binding("ctrl+s", "confirm", "Approve edited", priority=True),
        Binding("ctrl+enter", "confirm", "Approve edited", show=False, priority=True),
        Binding("escape", "cancel_edit", "Undo edit", priority=True),
        # The app's keys that work here too, for the footer (the app's own bindings run them).
        Binding("escape", "app.stop", "Stop run"),
        Binding("f6", "app.toggle_approve", "Approval off"),
        Binding("ctrl+q", "app.quit", "Quit"),
    ]

    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen #approval-dialog {
        width: 110; max-width: 100%; height: auto; max-height: 90%;
        border: thick $warning; padding: 0 1; background: $surface;
        scrollbar-size-vertical: 1;
    }
    ApprovalScreen.-short #approval-dialog { max-height: 100%; }
    ApprovalScreen #approval-title { dock: top; height: auto; text-style: bold; padding-bottom: 1; }
    ApprovalScreen #approval-code { height: auto; border: round $panel-lighten-2; }
    ApprovalScreen #approval-editor { height: 1fr; min-height: 3; }
    ApprovalScreen #approval-actions { dock: bottom; height: auto; }
    ApprovalScreen #approval-reason { margin-top: 1; }
    ApprovalScreen #approval-buttons { height: auto; align-horizontal: center; }
    ApprovalScreen Button { margin: 0 1; }
    ApprovalScreen #approval-hint { color: $text-muted; text-align: center; }
    ApprovalScreen.-short #approval-title { padding-bottom: 0; }
    ApprovalScreen.-short #approval-reason { margin-top: 0; }
    """

    def __init__(self, agent: str, name: str, arguments: dict[str, Any]) -> None:
        super().__init__()
        self.agent = agent
        self.tool = name
        self.arguments = dict(arguments)
        field, language = _editable(name)
        self.field = field if field in arguments else ""  # the argument the user may edit
        self.code = language not in ("", "text", "json")  # code: numbered lines, no soft wrap
        self.original = str(arguments.get(self.field, "")) if self.field else ""
        self.shown = inert(self.original)  # what the view and the editor show
        self.editing = False
        self.decided = False

    def compose(self) -> ComposeResult:
        title = Text("⏸ ", style="bold yellow")
        title.append(inert(self.agent), style="bold")
        title.append(" wants to ")
        title.append(inert(self.tool), style="bold cyan")
        if "file_path" in self.arguments:
            title.append(inert(f" → {self.arguments['file_path']}"), style="bold")
        title.append(" — approve, edit or reject it")
        with ApprovalDialog(id="approval-dialog"):
            yield Static(title, id="approval-title")
            yield Static(self._syntax(), id="approval-code")
            if self.field:
                editor = TextArea(
                    self.shown,
                    id="approval-editor",
                    soft_wrap=not self.code,
                    tab_behavior="focus",
                    show_line_numbers=self.code,
                    theme=SYNTAX_THEME,
                )
                editor.display = False
                yield editor
            with Vertical(id="approval-actions"):
                yield Input(placeholder="reason for rejecting (optional; Enter rejects; the model is told)",
                            id="approval-reason")
                with Horizontal(id="approval-buttons"):
                    yield Button("Approve · a", id="approve", variant="success")
                    if self.field:
                        yield Button("Edit · e", id="edit", variant="primary")
                    yield Button("Reject · r", id="reject", variant="error")
                yield Static(VIEW_HINT if self.field else VIEW_HINT.replace("e edit · ", ""), id="approval-hint")
        yield PriorityFooter()

    def on_mount(self) -> None:
        self.query_one("#approve", Button).focus()
        blink = getattr(self.app, "cursor_blink", True)
        for widget in self.query("TextArea, Input"):
            widget.cursor_blink = blink  # type: ignore[attr-defined]  # Input and TextArea both have cursor_blink; Widget does not

    def _syntax(self) -> Syntax:
        if self.field:
            return Syntax(self.shown, _lexer_for(self.tool, self.arguments), theme=SYNTAX_THEME,
                          line_numbers=self.code, word_wrap=True)
        shown = inert(json.dumps(self.arguments, ensure_ascii=False, indent=2))
        return Syntax(shown, "json", theme=SYNTAX_THEME, word_wrap=True)

    @property
    def editor(self) -> TextArea:
        return self.query_one("#approval-editor", TextArea)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """a/e/r while viewing (the editor types them); ctrl+s and Esc-undo while editing."""
        if action in ("confirm", "cancel_edit"):
            return self.editing
        if action in ("approve", "edit", "reject"):
            return not self.editing
        return True

    def _set_editing(self, editing: bool) -> None:
        self.editing = editing
        self.query_one("#approval-code").display = not editing
        self.editor.display = editing
        approve, edit = self.query_one("#approve", Button), self.query_one("#edit", Button)
        approve.label = "Approve edited · ctrl+s" if editing else "Approve · a"
        edit.label = "Undo edit · esc" if editing else "Edit · e"
        self.query_one("#reject", Button).label = "Reject" if editing else "Reject · r"
        for button in self.query(Button):
            button.refresh(layout=True)  # a new label does not resize a Button by itself
        self.query_one("#approval-hint", Static).update(EDIT_HINT if editing else VIEW_HINT)
        self.refresh_bindings()

    def action_edit(self) -> None:
        """Swap the highlighted view for an editable one (Approve then uses the edit)."""
        if not self.field or self.editing:
            return
        self._set_editing(True)
        self.editor.focus()

    def action_cancel_edit(self) -> None:
        """Esc while editing: back to the original code, nothing changed."""
        if not self.editing:
            return
        self.editor.load_text(self.shown)
        self._set_editing(False)
        self.query_one("#approve", Button).focus()

    def decision(self) -> Decision:
        """What Approve means now: the edit when the text changed, else a plain approve."""
        if self.editing:
            text = self.editor.text
            if self.tool == "install_package":
                text = text.strip()
            if text != self.shown:
                return "edit", {self.field: text}
        return "approve", None

    def action_approve(self) -> None:
        self._decide(self.decision())

    def action_confirm(self) -> None:
        """ctrl+s (or ctrl+enter where the terminal sends it): approve, with the edit."""
        self.action_approve()

    def action_reject(self) -> None:
        self._decide(("reject", self.query_one("#approval-reason", Input).value.strip()))

    def _decide(self, decision: Decision) -> None:
        if not self.decided and self.app.screen is self:
            self.decided = True
            self.dismiss(decision)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "edit" and self.editing:
            self.action_cancel_edit()
            return
        {"approve": self.action_approve, "edit": self.action_edit, "reject": self.action_reject}[
            event.button.id or "reject"
        ]()

    @on(Input.Submitted, "#approval-reason")
    def _reason_submitted(self) -> None:
        self.action_reject()

    def on_screen_resume(self) -> None:
        if self.decided:  # closed by the run while another screen was on top
            self.dismiss(("reject", "the run ended"))


class ApprovalBroker:
    """The controller's `approver`: one modal per tool call, awaited without blocking."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.open: list[ApprovalScreen] = []
        self._futures: dict[int, asyncio.Future[Decision]] = {}

    async def __call__(self, agent: str, call_id: str, name: str, args: dict[str, Any]) -> Decision:
        if not getattr(self.app, "approve_mode", True):
            return "approve", None  # switched off during the run
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        screen = ApprovalScreen(agent, name, args)

        def dismissed(result: Decision | None) -> None:
            if not future.done():
                future.set_result(result or ("reject", "no decision"))

        self.open.append(screen)
        self._futures[id(screen)] = future
        self.app.call_later(self.app.push_screen, screen, dismissed)
        try:
            return await future
        finally:
            self.open.remove(screen)
            self._futures.pop(id(screen), None)
            self._close(screen)

    def _close(self, screen: ApprovalScreen) -> None:
        if screen.decided:
            return
        screen.decided = True
        if screen.is_attached and self.app.screen is screen:
            screen.dismiss(("reject", "the run ended"))
        # else: not shown yet or under another screen: it closes itself when it resumes

    def approve_all(self) -> None:
        """Approval mode was switched off: whatever waits is approved."""
        for screen in list(self.open):
            future = self._futures.get(id(screen))
            if future is not None and not future.done():
                future.set_result(("approve", None))

    def close_all(self) -> None:
        """The run is over: no dialog may wait for it any more."""
        for screen in list(self.open):
            self._close(screen)
