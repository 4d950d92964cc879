"""The `.env` file: decoded whatever a Windows tool saved it as, parsed by python-dotenv,
checked line by line (python-dotenv only warns about a bad line), and *never* copied into
`os.environ`, so keys do not spill into child processes by accident.

Kept apart from `team.config` because settings read elsewhere (SBTEAM_IMAGE, the E2B
scale limits) need one value from the file without validating all settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


class EnvFileError(ValueError):
    """The file cannot be read as text; `str()` is one line naming it."""


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),  # Notepad, PowerShell 7's `-Encoding utf8BOM`
    (b"\xff\xfe", "utf-16"),  # UTF-16 LE: PowerShell 5's `>` and `Out-File`
    (b"\xfe\xff", "utf-16"),  # UTF-16 BE
)


def decode_env_file(path: Path) -> str:
    """The text of a `.env`: UTF-8, UTF-8 with a BOM, or UTF-16 (with a BOM, or plain
    ASCII-range UTF-16 without one, as some Windows tools write it).

    Raises `EnvFileError` with one line naming the file for anything else (another
    encoding, a binary file, a file that cannot be read).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise EnvFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding = name
            break
    else:
        if len(data) >= 2 and len(data) % 2 == 0 and b"\x00" in data:
            # UTF-16 without a BOM: every other byte of ASCII text is NUL
            if data[1::2].count(0) > len(data) // 4:
                encoding = "utf-16-le"
            elif data[0::2].count(0) > len(data) // 4:
                encoding = "utf-16-be"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise EnvFileError(
            f"{path} is neither UTF-8 nor UTF-16 text (undecodable byte at offset {exc.start}); save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise EnvFileError(f"{path} is not a text file (it holds NUL bytes); save it as UTF-8")
    return text


def read_env_file(path: Path, problems: list[str]) -> dict[str, str]:
    """Parse `.env`, adding one line to `problems` for an unreadable file or bad lines.

    The bytes are decoded here (`decode_env_file`) and python-dotenv parses the
    text, so a `.env` saved as UTF-16 by PowerShell works and an undecodable one
    is one line naming the file, never a `UnicodeDecodeError`.
    """
    import io
    import logging

    from dotenv import dotenv_values

    try:
        text = decode_env_file(path)
    except EnvFileError as error:
        problems.append(str(error))
        return {}
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[7:].lstrip()
        if "=" not in stripped or not stripped.split("=", 1)[0].strip().replace("_", "a").isalnum():
            bad.append(number)
    if bad:
        problems.append(
            f"{path} has lines python-dotenv cannot parse (line {', '.join(map(str, bad[:5]))}); "
            "use NAME=value, one per line"
        )
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)
    values = dotenv_values(stream=io.StringIO(text))
    return {k: v for k, v in values.items() if v is not None}


def dotenv_value(name: str, env_file: str | Path = ".env") -> str | None:
    """One variable from `.env` alone (for settings read outside `Settings`, such as
    SBTEAM_IMAGE); None when unset, empty or the file is unreadable. Problems with
    the file are reported by `Settings.load`, not here."""
    path = Path(env_file)
    if not path.is_file():
        return None
    value = read_env_file(path, []).get(name)
    return value.strip() if value and value.strip() else None


def merged_env(
    env: Mapping[str, str] | None = None, env_file: str | Path | None = ".env", problems: list[str] | None = None
) -> dict[str, str]:
    """The environment (default `os.environ`) over the `.env` file's values; the file's
    problems are added to `problems`."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update(read_env_file(Path(env_file), [] if problems is None else problems))
    merged.update(os.environ if env is None else env)
    return merged
