"""Tree of the sandbox's working folder (/home/user).

A plain `Tree` fed with `FileEntry` lists from the controller, because E2B
files are not on the host (so `DirectoryTree` cannot read them). The app
refreshes it on `FilesChanged` events only — no polling. Paths added or
changed since the user last looked carry a "●" until selected. Names are shown
inert (tui/inert.py): a name holding an escape sequence, or bytes that are not
UTF-8 (`\udcff`-style surrogates), shows as `␛[2J…` / `\xff`.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from team.filetypes import human_size
from tui.inert import inert
from tui.messages import EngineEvent

ROOT_LABEL = "/home/user"



class FileTree(Tree[Any]):
    """The sandbox file tree; node data is the entry (None for the root)."""

    DEFAULT_CSS = """
    FileTree { background: $surface; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(Text(ROOT_LABEL), **kwargs)  # a Text: no markup parse (its emoji table is ~2 ms of start-up)
        self.entries: dict[str, Any] = {}
        self.unseen: set[str] = set()
        self._path_nodes: dict[str, TreeNode[Any]] = {}
        self.show_root = True
        self.guide_depth = 3

    ENGINE_EVENTS = frozenset({"files_changed", "run_finished"})  # what `tui/driver.py` posts to this pane

    class Stale(Message):
        """The sandbox's files changed: the tree wants a new listing (the app owns the sandbox)."""

    def on_mount(self) -> None:
        self.root.expand()

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        from team.events import FilesChanged, RunFinished

        event = message.event
        if isinstance(event, FilesChanged):
            self.mark_changed(event.added, event.changed, event.removed)
            self.post_message(self.Stale())
        elif isinstance(event, RunFinished):
            self.post_message(self.Stale())  # the run's last files

    def mark_changed(self, added: list[str], changed: list[str], removed: list[str]) -> None:
        """Remember which paths are new or changed (shown with ● until viewed)."""
        self.unseen.update(added)
        self.unseen.update(changed)
        self.unseen.difference_update(removed)

    def mark_seen(self, path: str) -> None:
        if path in self.unseen:
            self.unseen.discard(path)
            node = self._path_nodes.get(path)
            if node is not None:
                node.set_label(self._entry_label(self.entries[path]))

    def _entry_label(self, entry: Any) -> Text:
        name = inert(entry.path.rstrip("/").rsplit("/", 1)[-1])
        text = Text()
        if entry.is_dir:
            text.append(name + "/", "bold")
        else:
            text.append(name)
            text.append(f"  {human_size(entry.size)}", "dim")
        if entry.path in self.unseen:
            text.append(" ●", "bold yellow")
        return text

    def set_entries(self, entries: list[Any]) -> None:
        """Show `entries`; rebuild only if the set of paths changed, else just relabel."""
        new = {e.path.rstrip("/"): e for e in entries}
        self.unseen &= set(new)
        if set(new) == set(self.entries) and self._path_nodes:
            self.entries = new
            for path, node in self._path_nodes.items():
                node.data = new[path]
                node.set_label(self._entry_label(new[path]))
            return
        selected = self.cursor_node.data.path if self.cursor_node and self.cursor_node.data else None
        expanded = {p for p, n in self._path_nodes.items() if n.is_expanded}
        self.entries = new
        self.clear()
        self._path_nodes = {}
        self.root.expand()
        # Breadth-first, so parents exist first and siblings come dirs-first by name.
        for path in sorted(new, key=lambda p: (p.count("/"), not new[p].is_dir, p.lower())):
            entry = new[path]
            parent_path = path.rsplit("/", 1)[0] if "/" in path else ""
            parent = self._path_nodes.get(parent_path, self.root)
            if entry.is_dir:
                node = parent.add(self._entry_label(entry), entry, expand=path in expanded or path.count("/") == 0)
            else:
                node = parent.add_leaf(self._entry_label(entry), entry)
            self._path_nodes[path] = node
        if selected:
            self._cursor_to(selected, select=False)

    def node_for(self, path: str) -> TreeNode[Any] | None:
        return self._path_nodes.get(path)

    def select_path(self, path: str) -> None:
        """Put the cursor on `path` and open it (the preview follows)."""
        self._cursor_to(path, select=True)

    def _cursor_to(self, path: str, select: bool) -> None:
        """Textual places the cursor by a node's line, which a node added a moment ago does
        not have until the tree has laid its lines out (on idle): moved then, the cursor went
        back to the top, and a listing rebuilt under the user lost their place. `last_line`
        lays them out now. A node that still has no line (in a collapsed folder) is left alone."""
        node = self._path_nodes.get(path)
        if node is None:
            return
        if node.line < 0:
            self.last_line  # noqa: B018 - read for its effect: the tree's lines are built
        if node.line >= 0:
            if select:
                self.select_node(node)
            else:
                self.move_cursor(node)

    @property
    def selected_path(self) -> str | None:
        node = self.cursor_node
        if node is None or node.data is None:
            return None
        return node.data.path
