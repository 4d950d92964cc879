"""`sandbox.files` of the E2B backend: the SDK's filesystem, following a recreate.

E2B kills a sandbox after its lifetime; the owner (`E2BSandbox._call`) recreates
it once per failing call, so these methods go through the owner each time
instead of holding one SDK sandbox.
"""

from __future__ import annotations

import builtins
import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .e2b import E2BSandbox

WALK_DEPTH = 64  # "the whole tree" for envd's list (it has no unlimited depth)


class E2BFiles:
    """`sandbox.files` that follows the current SDK sandbox across a recreate.

    The six `Files` methods map errors and recreate an expired sandbox; any
    other SDK filesystem method (get_info, rename, write_files, watch_dir …)
    is forwarded as is.
    """

    def __init__(self, owner: E2BSandbox) -> None:
        self._owner = owner

    async def read(self, path: str, format: str = "text", **kw: Any) -> Any:
        return await self._owner._call(lambda sdk: sdk.files.read(path, format=format, **kw))

    async def write(self, path: str, data: Any, **kw: Any) -> Any:
        return await self._owner._call(lambda sdk: sdk.files.write(path, data, **kw))

    async def list(self, path: str, depth: int | None = 1, **kw: Any) -> list[Any]:
        return await self._owner._call(lambda sdk: sdk.files.list(path, depth=depth, **kw))

    async def exists(self, path: str, **kw: Any) -> bool:
        return await self._owner._call(lambda sdk: sdk.files.exists(path, **kw))

    async def remove(self, path: str, **kw: Any) -> None:
        await self._owner._call(lambda sdk: sdk.files.remove(path, **kw))

    async def make_dir(self, path: str, **kw: Any) -> bool:
        return await self._owner._call(lambda sdk: sdk.files.make_dir(path, **kw))

    async def read_head(self, path: str, max_bytes: int) -> tuple[bytes, int]:
        """(at most `max_bytes` from the start, the file's size): streamed, then closed early."""
        info = await self._owner._call(lambda sdk: sdk.files.get_info(path))

        async def head(sdk: Any) -> bytes:
            stream = await sdk.files.read(path, format="stream")
            data = bytearray()
            try:
                async for chunk in stream:
                    data += chunk
                    if len(data) >= max_bytes:
                        break
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()
            return bytes(data[:max_bytes])

        return await self._owner._call(head), int(getattr(info, "size", 0) or 0)

    async def walk(self, path: str, max_entries: int) -> tuple[builtins.list[Any], bool]:
        """The whole tree under `path` (envd lists to any depth), at most `max_entries`."""
        entries = await self._owner._call(lambda sdk: sdk.files.list(path, depth=WALK_DEPTH))
        return entries[:max_entries], len(entries) > max_entries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.sdk.files, name)
