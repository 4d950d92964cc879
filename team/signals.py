"""Whether this process can take signal handlers: asyncio installs them on Unix, in the
main thread only. Shared by the batch runner (Ctrl+C, SIGTERM) and the app (SIGHUP,
SIGTERM); kept apart so the app's start-up imports nothing else for it."""

from __future__ import annotations

import sys
import threading


def can_take_signals() -> bool:
    return sys.platform != "win32" and threading.current_thread() is threading.main_thread()
