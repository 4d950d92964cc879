"""Decide whether a string is one pip requirement we are willing to install.

Shared by both backends so `install_package("numpy; rm -rf /")` is refused the
same way before any pip runs. Only PEP 508 names with optional extras and
version specifiers are accepted; URLs, paths, options and environment markers
are refused because they are how a prompt-injected model would smuggle shell
or remote code in.
"""

from __future__ import annotations

from packaging.requirements import InvalidRequirement, Requirement


def check_requirement(spec: str) -> str | None:
    """Return None when `spec` is acceptable, else a one-line reason."""
    text = (spec or "").strip()
    if not text:
        return "package name is empty"
    if len(text) > 200:
        return "package name is too long"
    if text.startswith("-"):
        return f"{text!r} looks like a pip option, not a package name"
    if any(ch in text for ch in "\n\r;|&`$<>\\") or "://" in text or "/" in text:
        return f"{text!r} is not a plain package name (no URLs, paths, markers or shell characters)"
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        return f"{text!r} is not a valid package requirement ({str(exc).splitlines()[0]})"
    if req.url or req.marker:
        return f"{text!r} is not a plain package name"
    return None
