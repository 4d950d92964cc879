"""Resource limits of the local sandbox: what they are, how they are parsed and shown.

On by default, because the code is hostile by assumption and the host is the
user's own machine. One setting, `SBTEAM_LIMITS`, overrides any of them:
`memory=4G,processes=256,file=2G,tmp=1G,disk=10G,cell=300` (`0` or `off`
turns one off). How each is enforced:

| limit     | enforced by                                                          |
|-----------|----------------------------------------------------------------------|
| memory    | cgroup `memory.max` where the host lets us make one, else RLIMIT_AS   |
| processes | cgroup `pids.max` where possible, plus RLIMIT_NPROC (counts threads)  |
| file      | RLIMIT_FSIZE: a write past it fails with "File too large"            |
| tmp       | size of the private `/tmp` (and `/dev/shm`) tmpfs                    |
| disk      | the sandbox folder is measured while a cell runs; past it the cell   |
|           | is interrupted with a clear error                                    |
| cell      | the wall-clock limit of one `run_code` (E2B's own default: 300 s)    |

RLIMIT_NPROC is not enforced for processes of host root (the kernel exempts
uid 0 even inside a user namespace), so for root the process limit holds only
where a cgroup could be made; `doctor` and `LocalSandbox.limits_report` say
which mechanism is in force.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace

GIB = 1 << 30
MIB = 1 << 20

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": MIB, "mb": MIB, "g": GIB, "gb": GIB, "t": GIB << 10}
KEYS = ("memory", "processes", "file", "tmp", "disk", "cell")


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * GIB


@dataclass(frozen=True)
class Limits:
    """Sandbox limits; 0 means off. Sizes in bytes, `cell` in seconds."""

    memory: int = 0
    processes: int = 256
    file: int = 2 * GIB
    tmp: int = 1 * GIB
    disk: int = 10 * GIB
    cell: float = 300.0

    @classmethod
    def default(cls) -> Limits:
        """The defaults: memory is the smaller of 4 GB and half this machine's RAM."""
        return cls(memory=min(4 * GIB, _total_memory() // 2))

    @classmethod
    def parse(cls, text: str | None, base: Limits | None = None) -> tuple[Limits, list[str]]:
        """`memory=4G,processes=256,…` over `base` (the defaults); returns (limits, problems)."""
        limits = base or cls.default()
        problems: list[str] = []
        if not text or not text.strip():
            return limits, problems
        changes: dict[str, float] = {}
        for part in text.split(","):
            if not part.strip():
                continue
            key, sep, raw = part.partition("=")
            key, raw = key.strip().lower(), raw.strip().lower()
            if not sep or key not in KEYS:
                problems.append(
                    f"SBTEAM_LIMITS: {part.strip()!r} is not NAME=VALUE with NAME one of {', '.join(KEYS)}"
                )
                continue
            value = _parse_value(key, raw)
            if value is None:
                kind = "a count" if key == "processes" else "seconds" if key == "cell" else "a size like 4G or 512M"
                problems.append(f"SBTEAM_LIMITS: {key} must be {kind}, or 0/off (got {raw!r})")
                continue
            changes[key] = value
        return replace(limits, **changes), problems  # type: ignore[arg-type]  # changes holds Limits' own fields, by construction

    def rlimits(self, *, isolated: bool, use_cgroup_memory: bool) -> dict[str, int]:
        """The rlimits `guest.exec_with_limits` sets inside the sandbox.

        Without isolation the process limit is left out: RLIMIT_NPROC then counts
        every process of the user on this machine, not just the sandbox's.
        """
        out: dict[str, int] = {}
        if self.memory and not use_cgroup_memory:
            out["RLIMIT_AS"] = self.memory
        if self.processes and isolated:
            out["RLIMIT_NPROC"] = self.processes
        if self.file:
            out["RLIMIT_FSIZE"] = self.file
        out["RLIMIT_CORE"] = 0  # a crashing process must not write a core file of its memory
        return out

    def as_text(self) -> str:
        """One line, the `SBTEAM_LIMITS` syntax: `memory=4.0G, processes=256, …`."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not value:
                shown = "off"
            elif f.name == "processes":
                shown = str(int(value))
            elif f.name == "cell":
                shown = f"{value:g}s"
            else:
                shown = human_bytes(int(value))
            parts.append(f"{f.name}={shown}")
        return ", ".join(parts)


def _parse_value(key: str, raw: str) -> float | None:
    if raw in ("0", "off", "none", "no"):
        return 0
    if key == "processes":
        return int(raw) if raw.isdigit() else None
    if key == "cell":
        try:
            value = float(raw.rstrip("s"))
        except ValueError:
            return None
        return value if value > 0 and value != float("inf") else None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", raw)
    if not match or match.group(2) not in _UNITS:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def human_bytes(n: int) -> str:
    """1536 → '1.5K'; sizes for the limits line (binary units, like `SBTEAM_LIMITS`)."""
    value = float(n)
    for unit in ("", "K", "M", "G"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit == "" or value >= 100 else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"
