"""What a file is, from its first bytes, and how big, in words.

Shared by the tools (what the model is told) and the app's preview and tree
(what the person sees), so both describe a file the same way. Light on
purpose: the app imports it before the engine's heavy parts.
"""

from __future__ import annotations

MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "ZIP archive (or xlsx/docx)"),
    (b"\x1f\x8b", "gzip data"),
    (b"PAR1", "Parquet file"),
    (b"\x93NUMPY", "NumPy array (.npy)"),
    (b"\x80", "Python pickle"),
    (b"SQLite format 3", "SQLite database"),
    (b"\x7fELF", "ELF executable"),
]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def is_binary(data: bytes) -> bool:
    """Not UTF-8 text: a NUL byte, or bytes that don't decode (a cut character at the end is fine)."""
    head = data[:8192]
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4
    return False


def binary_kind(data: bytes) -> str | None:
    """A short description when `data` is not text ("PNG image", "binary data"), else None."""
    for magic, name in MAGIC:
        if data.startswith(magic):
            return name
    return "binary data" if is_binary(data) else None
