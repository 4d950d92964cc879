"""A local stand-in for the E2B cloud, so `E2BSandbox` is tested without the internet.

It speaks just enough of the three E2B wire protocols for what `E2BSandbox` uses,
all on ONE ephemeral port of 127.0.0.1 (the SDK's `api_url` and `sandbox_url`
both point here; the sandbox is picked by the `E2b-Sandbox-Id` header the SDK
sends on every sandbox request):

* control-plane REST API: `POST /v2/sandboxes`, `GET /v2/sandboxes`,
  `DELETE /sandboxes/{id}` (checks `X-API-KEY`; 401 on a wrong key);
* the code interpreter: `POST /execute`, answered with the JSON-lines stream
  `e2b_code_interpreter.models` parses. The "kernel" is `exec()` in a
  per-sandbox dict namespace on a daemon thread; `print` in the cell is routed
  to the stream; `/home/user` in the code is the sandbox's folder on the host.
  A client disconnect interrupts the cell with `KeyboardInterrupt` (as the real
  server interrupts its kernel) and keeps the namespace;
* envd: `GET /health`, `GET`/`POST /files` (multipart or octet-stream) and the
  Connect-RPC calls `filesystem.Filesystem/{Stat,ListDir,MakeDir,Remove,Move}`
  (unary, JSON codec) and `process.Process/Start` (server streaming, enveloped
  JSON). Commands are NOT run: `command_handler` decides their output.

Switches for failure paths: `wrong key` (any key but `api_key` gets 401),
`api_status` (e.g. 429 on every API call), `expire()` (the sandbox is gone:
its requests get the proxy's 502 "sandbox was not found").

E2B's account limits, for tests of scale: `refuse_creates = N` answers the next N
creations with `refuse_status` (429 by default, with `Retry-After: refuse_retry_after`
when set); `lose_creates = N` makes the next N sandboxes but answers 502 as if the
answer was lost on the way; `max_alive` answers 429 while that many sandboxes are
alive (the concurrency limit). An `Idempotency-Key` seen before gets the sandbox it
made back instead of a new one, as the real API does. `create_log` has the
(time.monotonic(), status) of every creation request; `peak_alive` the most
sandboxes alive at once.

It is a test double, not a sandbox: the code runs in the test process.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import ctypes
import json
import posixpath
import shutil
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2b.envd.filesystem import filesystem_pb
from e2b.envd.process import process_pb
from protobuf import Oneof

ENVD_VERSION = "0.6.7"
HOME = "/home/user"

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_CONNECT_STATUS = {
    "not_found": 404,
    "already_exists": 409,
    "invalid_argument": 400,
    "internal": 500,
    "unimplemented": 404,
}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Command:
    sandbox_id: str
    cmd: str
    timeout_ms: int | None


@dataclass
class FakeSandbox:
    id: str
    root: Path
    envs: dict[str, str]
    namespace: dict[str, Any] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)  # code contexts' namespaces
    alive: bool = True
    execution_count: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def host_path(self, path: str) -> Path:
        """Map a sandbox path onto the stand-in's directory for this sandbox."""
        full = posixpath.normpath(posixpath.join(HOME, path or "."))
        return self.root / full.lstrip("/")


CommandHandler = Callable[[str], tuple[int, str, str]]


def _default_command_handler(cmd: str) -> tuple[int, str, str]:
    if cmd.startswith("pip install "):
        return 0, f"Successfully installed {cmd.removeprefix('pip install ')}\n", ""
    return 0, "", ""


class E2BStandIn:
    """In-process fake E2B (API + code interpreter + envd) on an ephemeral port."""

    def __init__(self, root: Path, api_key: str = "e2b_standin_key") -> None:
        self.root = root
        self.api_key = api_key
        self.api_status: int | None = None  # force this status on every API call
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.created: list[str] = []
        self.killed: list[str] = []
        self.commands: list[Command] = []
        self.interrupts = 0
        self.command_handler: CommandHandler = _default_command_handler
        self.refuse_creates = 0
        self.refuse_status = 429
        self.refuse_retry_after: str | None = None
        self.lose_creates = 0
        self.max_alive: int | None = None
        self.create_log: list[tuple[float, int]] = []
        self.peak_alive = 0
        self._by_key: dict[str, str] = {}  # Idempotency-Key -> sandbox id
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> E2BStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sdk_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for `E2BSandbox.create` that keep the SDK on this stand-in."""
        kwargs: dict[str, Any] = {
            "api_key": self.api_key,
            "api_url": self.url,
            "sandbox_url": self.url,
            "debug": False,
            "retries": 0,
            "request_timeout": 10,
        }
        kwargs.update(overrides)
        return kwargs

    # ---- test switches ---------------------------------------------------------------
    @property
    def current(self) -> FakeSandbox:
        """The most recently created sandbox."""
        return self.sandboxes[self.created[-1]]

    def expire(self, sandbox_id: str | None = None) -> None:
        """Make a sandbox vanish as if it hit its timeout: its requests now get 502."""
        sandbox = self.sandboxes[sandbox_id or self.created[-1]]
        sandbox.alive = False

    # ---- HTTP/1.1 plumbing -----------------------------------------------------------
    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            request = await _read_request(reader)
            if request is not None:
                await self._route(request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _route(
        self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        path = req.path
        if path.startswith("/v2/sandboxes") or path.startswith("/sandboxes"):
            await self._api(req, writer)
            return
        sandbox = self.sandboxes.get(req.headers.get("e2b-sandbox-id", ""))
        if sandbox is None or not sandbox.alive:
            sid = req.headers.get("e2b-sandbox-id", "?")
            await _send_json(
                writer,
                502,
                {"code": 502, "message": f"The sandbox {sid} was not found", "sandboxId": sid},
            )
            return
        if path == "/health":
            await _send(writer, 204, b"")
        elif path == "/execute" and req.method == "POST":
            await self._execute(sandbox, req, reader, writer)
        elif path == "/contexts" and req.method == "POST":  # a code context: a namespace of its own
            context = uuid.uuid4().hex
            sandbox.contexts[context] = {}
            await _send_json(writer, 200, {"id": context, "language": "python", "cwd": HOME})
        elif path == "/files":
            await self._files(sandbox, req, writer)
        elif path.startswith("/filesystem.Filesystem/"):
            await self._filesystem_rpc(sandbox, path.rsplit("/", 1)[1], req, writer)
        elif path == "/process.Process/Start":
            await self._process_start(sandbox, req, writer)
        else:
            await _send_json(
                writer,
                404,
                {"code": "unimplemented", "message": f"{path} is not served by the stand-in"},
            )

    # ---- control-plane API -----------------------------------------------------------
    async def _api(self, req: Request, writer: asyncio.StreamWriter) -> None:
        if req.headers.get("x-api-key") != self.api_key:
            await _send_json(writer, 401, {"code": 401, "message": "Invalid API key"})
            return
        if self.api_status is not None:
            await _send_json(
                writer,
                self.api_status,
                {"code": self.api_status, "message": "forced by the stand-in"},
            )
            return
        if req.method == "POST" and req.path == "/v2/sandboxes":
            await self._create(req, writer)
        elif req.method == "GET" and req.path == "/v2/sandboxes":
            await _send_json(writer, 200, [])
        elif req.method == "DELETE" and req.path.startswith("/sandboxes/"):
            sid = req.path.rsplit("/", 1)[1]
            sandbox = self.sandboxes.get(sid)
            if sandbox is None or not sandbox.alive:
                await _send_json(writer, 404, {"code": 404, "message": f"sandbox {sid} not found"})
                return
            sandbox.alive = False
            self.killed.append(sid)
            await _send(writer, 204, b"")
        else:
            await _send_json(writer, 404, {"code": 404, "message": "no such API route"})

    @property
    def alive(self) -> int:
        return sum(1 for sandbox in self.sandboxes.values() if sandbox.alive)

    async def _create(self, req: Request, writer: asyncio.StreamWriter) -> None:
        body = json.loads(req.body or b"{}")
        key = req.headers.get("idempotency-key", "")
        if self.refuse_creates > 0:
            self.refuse_creates -= 1
            self.create_log.append((time.monotonic(), self.refuse_status))
            headers = {"Retry-After": self.refuse_retry_after} if self.refuse_retry_after else {}
            message = "Rate limit exceeded (forced by the stand-in)"
            await _send_json(writer, self.refuse_status, {"code": self.refuse_status, "message": message}, headers)
            return
        sid = self._by_key.get(key) if key else None
        if sid is None:
            if self.max_alive is not None and self.alive >= self.max_alive:
                self.create_log.append((time.monotonic(), 429))
                message = f"You have reached the maximum number of concurrent sandboxes ({self.max_alive})"
                await _send_json(writer, 429, {"code": 429, "message": message})
                return
            sid = f"standin{len(self.created)}{uuid.uuid4().hex[:6]}"
            root = self.root / sid
            (root / HOME.lstrip("/")).mkdir(parents=True)
            self.sandboxes[sid] = FakeSandbox(id=sid, root=root, envs=dict(body.get("envVars") or {}))
            self.created.append(sid)
            self.peak_alive = max(self.peak_alive, self.alive)
            if key:
                self._by_key[key] = sid
        if self.lose_creates > 0:  # made, but the answer is lost on the way
            self.lose_creates -= 1
            self.create_log.append((time.monotonic(), 502))
            await _send_json(writer, 502, {"code": 502, "message": "bad gateway (forced by the stand-in)"})
            return
        self.create_log.append((time.monotonic(), 201))
        await _send_json(
            writer,
            201,
            {
                "templateID": body.get("templateID", "code-interpreter-v1"),
                "sandboxID": sid,
                "clientID": "standin",
                "envdVersion": ENVD_VERSION,
            },
        )

    # ---- code execution --------------------------------------------------------------
    async def _execute(
        self,
        sandbox: FakeSandbox,
        req: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        body = json.loads(req.body)
        code = body["code"]
        namespace = sandbox.contexts.get(body.get("context_id") or "", sandbox.namespace)
        # The cell runs in this process: paths under /home/user go to the sandbox's folder.
        code = code.replace(HOME, str(sandbox.host_path(HOME)))
        async with sandbox.lock:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

            def emit(item: dict[str, Any] | None) -> None:
                with contextlib.suppress(RuntimeError):  # the test's loop may be gone already
                    loop.call_soon_threadsafe(queue.put_nowait, item)

            thread = threading.Thread(target=_run_cell, args=(sandbox, code, emit, namespace), daemon=True)
            await _start_stream(writer, "application/json")
            thread.start()
            gone = asyncio.ensure_future(reader.read(1))  # b"" once the client hangs up
            try:
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        await self._interrupt(thread)
                        return
                    item = getter.result()
                    if item is None:
                        break
                    try:
                        await _chunk(writer, (json.dumps(item) + "\n").encode())
                    except ConnectionError:
                        await self._interrupt(thread)
                        return
                await _chunk(writer, b'{"type": "end_of_execution"}\n')
                await _end_stream(writer)
            finally:
                gone.cancel()

    async def _interrupt(self, thread: threading.Thread) -> None:
        """What the real server does on a client disconnect: interrupt the kernel."""
        self.interrupts += 1
        if thread.ident is not None and thread.is_alive():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt)
            )
        for _ in range(500):
            if not thread.is_alive():
                break
            await asyncio.sleep(0.01)

    # ---- envd: files over HTTP -------------------------------------------------------
    async def _files(
        self, sandbox: FakeSandbox, req: Request, writer: asyncio.StreamWriter
    ) -> None:
        if req.method == "GET":
            target = sandbox.host_path(req.query.get("path", ""))
            if not target.is_file():
                await _send_json(
                    writer,
                    404,
                    {"code": 404, "message": f"path '{req.query.get('path')}' does not exist"},
                )
                return
            await _send(writer, 200, target.read_bytes(), "application/octet-stream")
            return
        ctype = req.headers.get("content-type", "")
        uploads: list[tuple[str, bytes]] = []
        if ctype.startswith("multipart/form-data"):
            for filename, data in _parse_multipart(ctype, req.body):
                uploads.append((req.query.get("path") or filename, data))
        else:
            uploads.append((req.query["path"], req.body))
        infos = []
        for path, data in uploads:
            target = sandbox.host_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            full = posixpath.normpath(posixpath.join(HOME, path))
            infos.append({"name": posixpath.basename(full), "type": "file", "path": full})
        await _send_json(writer, 200, infos)

    # ---- envd: Connect-RPC -----------------------------------------------------------
    async def _filesystem_rpc(
        self, sandbox: FakeSandbox, method: str, req: Request, writer: asyncio.StreamWriter
    ) -> None:
        try:
            if method == "Stat":
                stat_req = filesystem_pb.StatRequest.from_json(req.body)
                reply: Any = filesystem_pb.StatResponse(entry=_entry(sandbox, stat_req.path))
            elif method == "ListDir":
                list_req = filesystem_pb.ListDirRequest.from_json(req.body)
                base = sandbox.host_path(list_req.path)
                if not base.is_dir():
                    raise _RpcError("not_found", f"directory '{list_req.path}' does not exist")
                depth = list_req.depth or 1
                entries = []
                for child in sorted(base.rglob("*")):
                    if len(child.relative_to(base).parts) <= depth:
                        entries.append(_entry(sandbox, "/" + str(child.relative_to(sandbox.root))))
                reply = filesystem_pb.ListDirResponse(entries=entries)
            elif method == "MakeDir":
                mk_req = filesystem_pb.MakeDirRequest.from_json(req.body)
                target = sandbox.host_path(mk_req.path)
                if target.exists():
                    raise _RpcError("already_exists", f"'{mk_req.path}' already exists")
                target.mkdir(parents=True)
                reply = filesystem_pb.MakeDirResponse(entry=_entry(sandbox, mk_req.path))
            elif method == "Remove":
                rm_req = filesystem_pb.RemoveRequest.from_json(req.body)
                target = sandbox.host_path(rm_req.path)
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                reply = filesystem_pb.RemoveResponse()
            elif method == "Move":
                mv_req = filesystem_pb.MoveRequest.from_json(req.body)
                src, dst = sandbox.host_path(mv_req.source), sandbox.host_path(mv_req.destination)
                if not src.exists():
                    raise _RpcError("not_found", f"'{mv_req.source}' does not exist")
                dst.parent.mkdir(parents=True, exist_ok=True)
                src.rename(dst)
                reply = filesystem_pb.MoveResponse(entry=_entry(sandbox, mv_req.destination))
            else:
                raise _RpcError(
                    "unimplemented", f"filesystem.Filesystem/{method} is not served by the stand-in"
                )
        except _RpcError as err:
            await _send_json(
                writer,
                _CONNECT_STATUS.get(err.code, 500),
                {"code": err.code, "message": err.message},
            )
            return
        await _send(writer, 200, reply.to_json().encode(), "application/json")

    async def _process_start(
        self, sandbox: FakeSandbox, req: Request, writer: asyncio.StreamWriter
    ) -> None:
        start = process_pb.StartRequest.from_json(_unenvelope(req.body))
        args = list(start.process.args) if start.process is not None else []
        cmd = args[-1] if args else ""
        timeout = req.headers.get("connect-timeout-ms")
        self.commands.append(Command(sandbox.id, cmd, int(timeout) if timeout else None))
        exit_code, out, err = self.command_handler(cmd)

        def event(ev: Oneof[Any, Any]) -> bytes:
            message = process_pb.StartResponse(event=process_pb.ProcessEvent(event=ev))
            return _envelope(0, message.to_json().encode())

        await _start_stream(writer, "application/connect+json")
        await _chunk(writer, event(Oneof("start", process_pb.ProcessEvent.StartEvent(pid=4242))))
        if out:
            data = process_pb.ProcessEvent.DataEvent(output=Oneof("stdout", out.encode()))
            await _chunk(writer, event(Oneof("data", data)))
        if err:
            data = process_pb.ProcessEvent.DataEvent(output=Oneof("stderr", err.encode()))
            await _chunk(writer, event(Oneof("data", data)))
        end = process_pb.ProcessEvent.EndEvent(
            exit_code=exit_code, exited=True, status=f"exit status {exit_code}"
        )
        await _chunk(writer, event(Oneof("end", end)))
        await _chunk(writer, _envelope(2, b"{}"))
        await _end_stream(writer)


class _RpcError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _entry(sandbox: FakeSandbox, path: str) -> filesystem_pb.EntryInfo:
    full = posixpath.normpath(posixpath.join(HOME, path))
    target = sandbox.host_path(full)
    if not target.exists():
        raise _RpcError("not_found", f"'{path}' does not exist")
    st = target.stat()
    kind = filesystem_pb.FileType.DIRECTORY if target.is_dir() else filesystem_pb.FileType.FILE
    return filesystem_pb.EntryInfo(
        name=posixpath.basename(full) or "/",
        type=kind,
        path=full,
        size=st.st_size,
        mode=st.st_mode & 0o777,
        permissions="rw-r--r--",
        owner="user",
        group="user",
    )


def _run_cell(
    sandbox: FakeSandbox, code: str, emit: Callable[[dict[str, Any] | None], None],
    namespace: dict[str, Any] | None = None,
) -> None:
    """The fake kernel: exec the cell in the sandbox's namespace (or a code context's),
    stream print() output."""
    ns = sandbox.namespace if namespace is None else namespace

    def _print(
        *args: Any,
        sep: str | None = " ",
        end: str | None = "\n",
        file: Any = None,
        flush: bool = False,
    ) -> None:
        stream = "stderr" if file is sys.stderr else "stdout"
        text = (sep if sep is not None else " ").join(map(str, args)) + (
            end if end is not None else "\n"
        )
        emit({"type": stream, "text": text, "timestamp": time.time_ns() // 1000})

    ns["print"] = _print
    # also for code the cell execs with globals of its own (they inherit the cell's builtins)
    ns["__builtins__"] = {**vars(builtins), "print": _print}
    sandbox.execution_count += 1
    try:
        tree = ast.parse(code)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<cell>", "exec"), ns)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns)  # type: ignore[attr-defined]
            if value is not None:
                emit({"type": "result", "text": repr(value), "is_main_result": True})
    except BaseException as exc:  # noqa: BLE001 - a kernel reports everything, KeyboardInterrupt too
        emit(
            {
                "type": "error",
                "name": type(exc).__name__,
                "value": str(exc),
                "traceback": "".join(traceback.format_exception(exc)),
            }
        )
    finally:
        emit({"type": "number_of_executions", "execution_count": sandbox.execution_count})
        emit(None)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        key, _, value = raw.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += await reader.readexactly(size)
            await reader.readline()
        data = bytes(body)
    else:
        length = int(headers.get("content-length") or 0)
        data = await reader.readexactly(length) if length else b""
    split = urllib.parse.urlsplit(target)
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query).items()}
    return Request(method, urllib.parse.unquote(split.path), query, headers, data)


async def _send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()


async def _send_json(
    writer: asyncio.StreamWriter, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    await _send(writer, status, json.dumps(payload).encode(), "application/json", headers)


async def _start_stream(writer: asyncio.StreamWriter, content_type: str) -> None:
    writer.write(
        (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    await writer.drain()


async def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await writer.drain()


async def _end_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def _envelope(flags: int, payload: bytes) -> bytes:
    return bytes([flags]) + len(payload).to_bytes(4, "big") + payload


def _unenvelope(body: bytes) -> bytes:
    length = int.from_bytes(body[1:5], "big")
    return body[5 : 5 + length]


def _parse_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(filename, data) of each file part of a multipart/form-data body."""
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
    files = []
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        filename = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition") and "filename=" in line:
                filename = line.split("filename=", 1)[1].split(";")[0].strip().strip('"')
        files.append(
            (urllib.parse.unquote(filename), data[:-2] if data.endswith(b"\r\n") else data)
        )
    return files
