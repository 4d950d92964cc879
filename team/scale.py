"""What `batch` and `eval` share to run many tasks: resume, shards, a pool, progress.

- **Resume**: each finished task is one line of `OUT/results.jsonl`, appended and
  flushed to disk (fsync) as soon as it finishes. Running the same command into
  the same folder reads it back and skips every task already finished, by its key
  (the question id, or a hash of the task text) and the hash of what it was given;
  so a crash, a killed pod or Ctrl+C loses nothing finished. A task that failed to
  run (no sandbox, the model endpoint down, stopped) is run again. A line torn by a
  crash is ignored (and said).
- **Shards**: `--shard I/N` (0-based, like Kubernetes' `JOB_COMPLETION_INDEX`) takes
  every N-th task starting at the I-th; without the flag, `JOB_COMPLETION_INDEX` and
  `JOB_COMPLETIONS` are read from the environment, so an Indexed Job runs N pods
  with the same command. A shard writes to `OUT/shard-I-of-N/`; `merge` combines.
- **Pool**: at most `concurrency` tasks at once, started in input order; a stop
  request (first Ctrl+C) starts no new task and lets the running ones stop.
- **Limits**: local kernels are capped by the CPU count, E2B by the process's
  sandbox cap (SBTEAM_E2B_CONCURRENCY); model calls are retried by the OpenAI SDK
  with backoff, jitter and `Retry-After`, `SCALE_MODEL_RETRIES` times.

Slightly over the ~400-line guide: planning, resuming, sharding and merging share the
results file's format, kept in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from .events import json_text
from .sandbox.kinds import kind_named
from .sanitize import inert
from .signals import can_take_signals

T = TypeVar("T")
RESULTS = "results.jsonl"
SUMMARY = "summary.json"
SCALE_MODEL_RETRIES = 6  # OpenAI SDK retries (0.5 s doubling to 8 s, jittered; Retry-After up to 60 s)


class ScaleError(ValueError):
    """Bad shard, output folder or results file (one line)."""


# -- shards -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N` with 0 ≤ I < N."""
        head, sep, tail = text.strip().partition("/")
        if not sep or not head.strip().isdigit() or not tail.strip().isdigit():
            raise ScaleError(f"--shard takes I/N, e.g. 0/4 (got {text!r})")
        return cls._checked(int(head), int(tail), "--shard")

    @classmethod
    def _checked(cls, index: int, count: int, where: str) -> Shard:
        if count < 1:
            raise ScaleError(f"{where}: the number of shards must be 1 or more (got {count})")
        if not 0 <= index < count:
            raise ScaleError(
                f"{where}: shard index {index} is not in 0..{count - 1} (0-based, like JOB_COMPLETION_INDEX)"
            )
        return cls(index, count)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Shard | None:
        """From a Kubernetes Indexed Job: JOB_COMPLETION_INDEX and JOB_COMPLETIONS."""
        index, count = env.get("JOB_COMPLETION_INDEX", "").strip(), env.get("JOB_COMPLETIONS", "").strip()
        if not index:
            return None
        if not count:
            raise ScaleError(
                "JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: set it to the Job's "
                "spec.completions (see docs/kubernetes.md), or pass --shard I/N"
            )
        if not index.isdigit() or not count.isdigit():
            raise ScaleError(f"JOB_COMPLETION_INDEX/JOB_COMPLETIONS must be whole numbers (got {index!r}/{count!r})")
        return cls._checked(int(index), int(count), "JOB_COMPLETION_INDEX/JOB_COMPLETIONS")

    def take(self, items: Sequence[T]) -> list[T]:
        return [item for i, item in enumerate(items) if i % self.count == self.index]

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def folder(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def resolve_shard(flag: str | None, env: Mapping[str, str] | None = None) -> Shard | None:
    """`--shard` when given, else the Indexed Job's variables, else None."""
    if flag:
        return Shard.parse(flag)
    return Shard.from_env(os.environ if env is None else env)


def output_dir(out: Path, shard: Shard | None) -> Path:
    return out / shard.folder if shard is not None and shard.count > 1 else out


# -- keys -------------------------------------------------------------------------------


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def text_keys(texts: Iterable[str]) -> list[str]:
    """A stable key per task text: its hash, `#2`, `#3` … for repeats of the same text."""
    seen: dict[str, int] = {}
    keys = []
    for text in texts:
        digest = text_hash(text)
        seen[digest] = seen.get(digest, 0) + 1
        keys.append(f"h:{digest}" if seen[digest] == 1 else f"h:{digest}#{seen[digest]}")
    return keys


# -- results.jsonl ----------------------------------------------------------------------


class ResultLog:
    """`results.jsonl`: one JSON object per finished task, written whole, flushed and
    fsynced before the next; the last line of a key wins."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / RESULTS
        self.torn = 0  # lines that were not whole JSON (a crash mid-write)
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, Any]]:
        """key -> its last record ({} when there is no file yet)."""
        records, self.torn = read_results(self.path)
        return records

    def append(self, record: dict[str, Any]) -> None:
        line = json_text(record) + "\n"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                if fh.tell() > 0 and not _ends_with_newline(self.path):
                    fh.write("\n")  # after a torn line: start clean
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def read_results(path: Path) -> tuple[dict[str, dict[str, Any]], int]:
    """(key -> last record, number of unreadable lines)."""
    records: dict[str, dict[str, Any]] = {}
    torn = 0
    try:
        text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return records, 0
    except OSError as exc:
        raise ScaleError(f"cannot read {path}: {exc.strerror or exc}") from None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            torn += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("key"), str):
            records.pop(record["key"], None)
            records[record["key"]] = record
        else:
            torn += 1
    return records, torn


def result_dirs(paths: Sequence[Path]) -> list[Path]:
    """The folders holding a results.jsonl among `paths` and their `shard-*` subfolders."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            raise ScaleError(f"{path} is not a folder")
        if (path / RESULTS).is_file():
            found.append(path)
        found.extend(sorted(p for p in path.glob("shard-*") if (p / RESULTS).is_file()))
    if not found:
        raise ScaleError(f"no {RESULTS} in {', '.join(str(p) for p in paths)} (nor in shard-* folders in them)")
    return list(dict.fromkeys(found))


def read_summary(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def merge_results(folders: Sequence[Path]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """All records of all folders (a finished record beats a failed one, then the latest),
    and the problems found: torn lines, shards of a plan that are missing."""
    merged: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    plans: dict[int, set[int]] = {}
    for folder in folders:
        records, torn = read_results(folder / RESULTS)
        if torn:
            problems.append(f"{folder / RESULTS}: {torn} unreadable line(s) skipped")
        for key, record in records.items():
            old = merged.get(key)
            if old is None or _better(record, old):
                merged[key] = record
        shard = read_summary(folder).get("shard")
        if isinstance(shard, str) and "/" in shard:
            index, count = (int(x) for x in shard.split("/"))
            plans.setdefault(count, set()).add(index)
    for count, seen in plans.items():
        missing = sorted(set(range(count)) - seen)
        if missing:
            problems.append(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} of {count} not among the folders")
    return merged, problems


def _better(new: dict[str, Any], old: dict[str, Any]) -> bool:
    if (new.get("status") == "failed") != (old.get("status") == "failed"):
        return old.get("status") == "failed"
    return str(new.get("finished", "")) >= str(old.get("finished", ""))


def write_json(path: Path, data: Any) -> None:
    """Atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json_text(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# -- settings and concurrency -----------------------------------------------------------


def at_scale(settings: Any) -> Any:
    """Settings for many runs: the model client retries 429/5xx more patiently."""
    return settings.with_(model_retries=max(settings.model_retries, SCALE_MODEL_RETRIES))


def effective_concurrency(requested: int, sandbox: str) -> tuple[int, str]:
    """(runs at once, why it is lower than asked or ""): local kernels by the CPUs, E2B by
    this process's sandbox cap."""
    requested = max(1, requested)
    if kind_named(sandbox).on_host:
        cpus = os.cpu_count() or 1
        if requested > cpus:
            return cpus, f"local sandboxes: capped at the {cpus} CPU(s)"
        return requested, ""
    try:
        from .sandbox.e2b import scale_limits

        cap = scale_limits()[0]
    except ValueError:
        return requested, ""  # the sandbox says it, once per run
    if cap and requested > cap:
        return cap, f"E2B: capped at SBTEAM_E2B_CONCURRENCY={cap} sandboxes"
    return requested, ""


# -- the pool ---------------------------------------------------------------------------


async def run_pool(
    items: Sequence[T], worker: Callable[[T], Awaitable[None]], concurrency: int, stop: asyncio.Event | None = None
) -> None:
    """Run `worker(item)` for each item, at most `concurrency` at once, in order;
    once `stop` is set no new item starts. A worker's exception is its own business
    (workers record their failures); it does not stop the others."""
    queue = list(items)
    stop = stop or asyncio.Event()

    async def lane() -> None:
        while queue and not stop.is_set():
            item = queue.pop(0)
            try:
                await worker(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the worker records its own failures
                pass

    await asyncio.gather(*(lane() for _ in range(max(1, min(concurrency, len(queue) or 1)))))


@contextlib.contextmanager
def on_sigint(handler: Callable[[], None]) -> Iterator[None]:
    """Ctrl+C and SIGTERM (a pod being deleted, `docker stop`) call `handler` (ask to stop;
    a second signal: force) instead of killing the process, so running sandboxes are closed
    (an abandoned E2B sandbox would hold a slot of the account until it expires). Where the
    OS does not let us (Windows, not the main thread) the signals stay as they are."""
    loop = asyncio.get_running_loop()
    installed = []
    if can_take_signals():  # elsewhere, leave them be
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


class Stopper:
    """The stop request of a batch: first call stops gracefully, the second forces."""

    def __init__(self, stop: asyncio.Event | None = None) -> None:
        self.event = stop or asyncio.Event()
        self.active: set[Any] = set()

    def __call__(self) -> None:
        force = self.event.is_set()
        self.event.set()
        for controller in list(self.active):
            asyncio.ensure_future(controller.stop(force=force))


# -- progress ---------------------------------------------------------------------------


class Progress:
    """done/total, the score so far, ETA and failures: one line per finished task, and
    on a terminal a status line kept at the bottom."""

    def __init__(self, total: int, out: IO[str] | None = None, *, what: str = "task", score_label: str = "ok") -> None:
        self.total = total
        self.out = out or sys.stderr
        self.what = what
        self.score_label = score_label
        self.done = 0
        self.good = 0
        self.scored = 0
        self.failed = 0
        self.running = 0
        self.t0 = time.monotonic()
        self.skipped = 0  # finished before this run (resume): not part of the pace
        self.live = bool(getattr(self.out, "isatty", lambda: False)())
        self._shown = False

    def started(self) -> None:
        self.running += 1
        self._status()

    def finished(self, line: str, *, good: bool | None, failed: bool = False) -> None:
        self.running = max(0, self.running - 1)
        self.done += 1
        if failed:
            self.failed += 1
        elif good is not None:
            self.scored += 1
            self.good += bool(good)
        self._clear()
        self.out.write(inert(f"[{self.done}/{self.total}] {line}") + "\n")
        self._status()

    def eta(self) -> float | None:
        ran = self.done - self.skipped
        if ran <= 0:
            return None
        elapsed = time.monotonic() - self.t0
        return elapsed / ran * (self.total - self.done)

    def line(self) -> str:
        parts = [f"{self.done}/{self.total} done"]
        if self.scored:
            parts.append(f"{self.score_label} {self.good / self.scored:.0%} ({self.good}/{self.scored})")
        parts.append(f"{self.failed} failed")
        if self.running:
            parts.append(f"{self.running} running")
        eta = self.eta()
        parts.append(f"ETA {clock(eta)}" if eta is not None else "ETA —")
        parts.append(f"elapsed {clock(time.monotonic() - self.t0)}")
        return " · ".join(parts)

    def _status(self) -> None:
        if self.live:
            self.out.write("\r\x1b[2K" + self.line())
            self.out.flush()
            self._shown = True
        else:
            self.out.flush()

    def _clear(self) -> None:
        if self.live and self._shown:
            self.out.write("\r\x1b[2K")
            self._shown = False

    def close(self) -> None:
        self._clear()
        self.out.write(self.line() + "\n")
        self.out.flush()


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
