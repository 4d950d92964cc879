"""The file tools: `list_files`, `read_file` (read-only, the Analyst's too) and `write_file`.

`list_files(path="/")` keeps the seed's default; "/" means the sandbox's
working folder /home/user, which is the only place the model's files live.
Names that are not UTF-8 are shown with \\xNN escapes (an API request cannot
carry the raw bytes) and `read_file` accepts them back in that form.
"""

from __future__ import annotations

import asyncio

from ..filetypes import binary_kind, human_size
from ..sandbox.base import WORKDIR
from ..sanitize import raw_name, shown_name
from ..session import absolute_path, relative_path
from .context import MAX_READ_BYTES, MAX_READ_CHARS, ToolContext, one_line, trim
from .registry import ANALYST, CODE_AGENT, ToolSpec


async def list_files(ctx: ToolContext, path: str = "/") -> str:
    target = WORKDIR if path.strip() in ("", "/", ".") else absolute_path(path)
    try:
        entries = await ctx.session.list_entries(target)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return f"❌ cannot list {path!r}: {one_line(exc)}"
    base = relative_path(target) or ""
    lines = []
    for entry in entries:
        rel = entry.path[len(base) + 1 :] if base and entry.path.startswith(base + "/") else entry.path
        if base and not entry.path.startswith(base + "/"):
            continue
        name = shown_name(rel)  # a non-UTF-8 byte as \xNN: an API request cannot carry it raw
        lines.append(f"📁 {name}/" if entry.is_dir else f"📄 {name} ({human_size(entry.size)})")
    if not lines:
        return f"📂 {target} is empty"
    return trim(f"📂 {target} ({len(lines)} entries)\n" + "\n".join(lines))


LIST_FILES = ToolSpec(
    name="list_files",
    func=list_files,
    read_only=True,
    description="List the files in a sandbox folder ('/' means the working folder /home/user).",
)


async def read_file(ctx: ToolContext, file_path: str) -> str:
    session = ctx.session
    try:
        try:
            data, size = await session.read_head(file_path, MAX_READ_BYTES)
        except Exception:
            if raw_name(file_path) == file_path:
                raise
            # a name list_files showed with \xNN for bytes that are not UTF-8
            data, size = await session.read_head(raw_name(file_path), MAX_READ_BYTES)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return f"❌ cannot read {file_path!r}: {_describe_read_error(exc)}"
    kind = binary_kind(data)
    if kind:
        return f"❌ {file_path} is a {kind} ({human_size(size)}); not shown as text"
    text = data.decode("utf-8", errors="replace")
    note = f" (first {human_size(len(data))} of {human_size(size)})" if size > len(data) else ""
    return f"📄 {file_path}{note}:\n{trim(text, MAX_READ_CHARS)}"


READ_FILE = ToolSpec(
    name="read_file",
    func=read_file,
    read_only=True,
    agents=(CODE_AGENT, ANALYST),
    description="Read a text file from the sandbox.",
)


async def write_file(ctx: ToolContext, file_path: str, content: str) -> str:
    if "\n" in file_path or "\r" in file_path or "\x00" in file_path:
        return "❌ the file name contains a newline or NUL character; choose a plain name"
    session = ctx.session
    try:
        await session.initialize()
        await session.sandbox.files.write(absolute_path(file_path), content)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return f"❌ cannot write {file_path!r}: {one_line(exc)}"
    return f"✅ file written: {file_path} ({human_size(len(content.encode('utf-8')))})"


WRITE_FILE = ToolSpec(
    name="write_file",
    func=write_file,
    needs_approval=True,
    editable_arg="content",
    editable_language="",  # the dialog highlights it as file_path's extension says
    description="Write text content to a file in the sandbox (folders are created).",
)


def _describe_read_error(exc: Exception) -> str:
    text = one_line(exc)
    lowered = text.lower()
    if "not found" in lowered or "no such file" in lowered or type(exc).__name__.endswith("NotFoundException"):
        return "no such file (use list_files to see what exists)"
    if "is a directory" in lowered or "isadirectory" in lowered:
        return "it is a folder; use list_files"
    return text
