"""A cgroup per sandbox for its memory and process limits, where the host allows one.

cgroup v2 is used when our own cgroup (or a delegated subtree) is writable and
offers the `memory` and `pids` controllers; cgroup v1 (`memory` and `pids`
hierarchies) when they are writable, which in practice means root. Anything
else returns None with the reason, and the sandbox falls back to rlimits
(see `limits.py`). The sandbox cannot touch its cgroup: it has its own cgroup
namespace and no `/sys`.

A process joins by writing its pid into `cgroup.procs` (done in the child
between fork and exec, see `launcher.Launcher`), so every process it starts
is charged to the same group.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field

from .launcher import pid_alive

PREFIX = "sbteam-"


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of every cgroup mount."""
    out = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fstype, _source, options = (right.split() + ["", "", ""])[:3]
                if fstype in ("cgroup", "cgroup2"):
                    out.append((left.split()[4], fstype, options))
    except OSError:
        pass
    return out


def _own_paths() -> dict[str, str]:
    """controller ("" for v2) -> our cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                _id, controllers, path = line.rstrip("\n").split(":", 2)
                for name in controllers.split(",") if controllers else [""]:
                    paths[name] = path
    except OSError:
        pass
    return paths


def _write(path: str, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _reap_stale(parent: str) -> None:
    """Remove empty groups left by an app that was killed (name carries its pid)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            if not name.startswith(PREFIX):
                continue
            pid = name[len(PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(parent, name))


@dataclass
class Cgroup:
    """One sandbox's group (v2: one folder; v1: one folder per controller)."""

    version: str
    dirs: dict[str, str]  # controller ("" for v2) -> folder
    memory: bool = False
    pids: bool = False
    _oom_base: int = field(default=0, repr=False)

    @property
    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in dict.fromkeys(self.dirs.values())]

    def describe(self) -> str:
        what = [n for n, on in (("memory", self.memory), ("processes", self.pids)) if on]
        return f"cgroup {self.version} ({', '.join(what)})"

    def oom_kills(self) -> int:
        """How many processes the memory limit killed since the group was made."""
        folder = self.dirs.get("" if self.version == "v2" else "memory")
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        if not folder:
            return 0
        try:
            with open(os.path.join(folder, name)) as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value) - self._oom_base
        except (OSError, ValueError):
            pass
        return 0

    def remove(self, wait: float = 2.0) -> None:
        """Remove the group once its processes are gone (they were killed just before)."""
        deadline = time.monotonic() + wait
        for folder in dict.fromkeys(self.dirs.values()):
            while True:
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)


def create(memory: int, pids: int) -> tuple[Cgroup | None, str]:
    """A new group with the limits set, or (None, why not)."""
    if not (memory or pids):
        return None, "no memory or process limit asked for"
    name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mounts = _mounts()
    own = _own_paths()
    reasons = []
    v2 = next((m for m in mounts if m[1] == "cgroup2"), None)
    if v2 is not None and "" in own:
        group, why = _create_v2(os.path.join(v2[0], own[""].lstrip("/")), name, memory, pids)
        if group is not None:
            return group, ""
        reasons.append(f"v2: {why}")
    group, why = _create_v1(mounts, own, name, memory, pids)
    if group is not None:
        return group, ""
    reasons.append(f"v1: {why}")
    return None, "; ".join(reasons)


def _create_v2(parent: str, name: str, memory: int, pids: int) -> tuple[Cgroup | None, str]:
    try:
        with open(os.path.join(parent, "cgroup.controllers")) as fh:
            available = set(fh.read().split())
    except OSError as exc:
        return None, exc.strerror or str(exc)
    wanted = [c for c, on in (("memory", memory), ("pids", pids)) if on]
    if not all(c in available for c in wanted):
        return None, f"controllers {', '.join(wanted)} not available here ({' '.join(sorted(available)) or 'none'})"
    _reap_stale(parent)
    folder = os.path.join(parent, name)
    try:
        os.mkdir(folder)
    except OSError as exc:
        return None, f"cannot create a cgroup ({exc.strerror or exc})"
    group = Cgroup("v2", {"": folder})
    try:
        with open(os.path.join(folder, "cgroup.controllers")) as fh:
            enabled = set(fh.read().split())
        if not all(c in enabled for c in wanted):
            # Enabling controllers for children fails (EBUSY) where the parent holds
            # processes itself, unless it is the root cgroup: then we give up.
            _write(os.path.join(parent, "cgroup.subtree_control"), " ".join(f"+{c}" for c in wanted))
        if memory:
            _write(os.path.join(folder, "memory.max"), str(memory))
            with contextlib.suppress(OSError):
                _write(os.path.join(folder, "memory.swap.max"), "0")
            group.memory = True
        if pids:
            _write(os.path.join(folder, "pids.max"), str(pids))
            group.pids = True
    except OSError as exc:
        group.remove(0)
        return None, f"cannot set limits ({exc.strerror or exc})"
    group._oom_base = group.oom_kills()
    return group, ""


def _create_v1(
    mounts: list[tuple[str, str, str]], own: dict[str, str], name: str, memory: int, pids: int
) -> tuple[Cgroup | None, str]:
    dirs: dict[str, str] = {}
    wanted = [c for c, on in (("memory", memory), ("pids", pids)) if on]
    for controller in wanted:
        mount = next((m for m in mounts if m[1] == "cgroup" and controller in m[2].split(",")), None)
        if mount is None or controller not in own:
            return None, f"no {controller} hierarchy"
        parent = os.path.join(mount[0], own[controller].lstrip("/"))
        _reap_stale(parent)
        dirs[controller] = os.path.join(parent, name)
    group = Cgroup("v1", {})
    try:
        for controller, folder in dirs.items():
            if folder not in group.dirs.values():  # co-mounted controllers share one
                os.mkdir(folder)
            group.dirs[controller] = folder
        if memory:
            _write(os.path.join(dirs["memory"], "memory.limit_in_bytes"), str(memory))
            group.memory = True
        if pids:
            _write(os.path.join(dirs["pids"], "pids.max"), str(pids))
            group.pids = True
    except OSError as exc:
        group.remove(0)
        return None, f"cannot create or set a cgroup ({exc.strerror or exc})"
    group._oom_base = group.oom_kills()
    return group, ""
