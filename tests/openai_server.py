"""A tiny OpenAI-compatible HTTP server for tests (127.0.0.1, ephemeral port, stdlib only).

Why: the real `OpenAIChatCompletionClient` (and the openai SDK under it) should be
exercised end to end — streaming, tool-call deltas, usage, errors, broken
connections — without the internet and without mocking the SDK's internals.

    with FakeOpenAIServer(script=["hello", tool_call("run_code", {"code": "1+1"})]) as srv:
        client = OpenAIChatCompletionClient(model="fake", base_url=srv.base_url, api_key="x", ...)
        ...
        assert srv.requests[0]["messages"][-1]["content"] == "..."

`script` is one reply, a list of replies (one per chat request, in order), or a
callable `responder(request_json) -> reply`. `calls_as_text=FORMAT` makes the fake
model write every tool call into the message text instead (as small local models
do; FORMAT is one of `TEXT_CALL_FORMATS`), with `finish_reason=stop`. A reply is a `Reply`, a plain `str`
(text), a `ToolCall`, or a list of `ToolCall`s (one answer with several calls;
inside a script list, since a top-level list is the queue). Build replies with
`text()`, `tool_call()`, `tool_calls()`, `error()`, `garbage()`, `die_mid_stream()`.

The server runs in a daemon thread, so it works from sync and async tests alike;
`stop()` (or leaving the `with` block) closes open keep-alive connections too.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "FakeOpenAIServer",
    "Received",
    "Reply",
    "ToolCall",
    "die_mid_stream",
    "error",
    "garbage",
    "split_text",
    "text",
    "tool_call",
    "tool_calls",
    "unused_port",
    "TEXT_CALL_FORMATS",
    "written_call",
]


@dataclass
class ToolCall:
    name: str
    arguments: str  # JSON text, exactly as the model would write it
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclass
class Reply:
    """What the fake model answers to one chat completion request.

    Ordinary answers: `content` and/or `tool_calls` (sent as SSE chunks when the
    request streams, else as one JSON body). Failures: `status` != 200 with
    `error_body`; `raw` (bytes sent verbatim with `content_type`, for
    not-OpenAI-compatible answers); `die_after` (close the connection after that
    many SSE chunks, no terminating chunk). `delay` sleeps before answering.
    """

    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    chunks: list[str] | None = None  # how content is split when streaming
    status: int = 200
    error_body: dict[str, Any] | None = None
    raw: bytes | None = None
    content_type: str = "text/html; charset=utf-8"
    die_after: int | None = None
    delay: float = 0.0
    usage: tuple[int, int] | None = None  # (prompt, completion); default: estimated
    finish_reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    arg_chunk: int | None = None  # characters per tool-call argument delta (default: OpenAI-like ≤ 8)
    pace: float = 0.0  # seconds between streamed chunks (a slow model)


def split_text(content: str) -> list[str]:
    """Split like a tokenizer would, roughly: each word with its trailing space."""
    return re.findall(r"\S+\s*|\s+", content) or [content]


def text(content: str, *, chunks: list[str] | None = None, **kw: Any) -> Reply:
    return Reply(content=content, chunks=chunks, **kw)


def tool_call(
    name: str, arguments: dict[str, Any] | str | None = None, *, id: str | None = None
) -> Reply:
    return tool_calls([(name, arguments)], ids=[id] if id else None)


def tool_calls(
    calls: Sequence[tuple[str, dict[str, Any] | str | None]], *, ids: Sequence[str] | None = None
) -> Reply:
    made = []
    for i, (name, arguments) in enumerate(calls):
        args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        made.append(ToolCall(name, args) if not ids else ToolCall(name, args, ids[i]))
    return Reply(tool_calls=made)


def error(
    status: int,
    message: str = "error",
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> Reply:
    """An HTTP error with OpenAI's error body shape."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return Reply(status=status, error_body=body)


def garbage(
    body: str | bytes = "<html><body>502 Bad Gateway</body></html>",
    *,
    status: int = 200,
    content_type: str = "text/html; charset=utf-8",
) -> Reply:
    """A body that is not OpenAI JSON (a proxy's HTML page, truncated JSON, ...)."""
    raw = body.encode() if isinstance(body, str) else body
    return Reply(raw=raw, status=status, content_type=content_type)


def die_mid_stream(
    content: str = "this answer will be cut off right here", after: int = 3
) -> Reply:
    """Stream `after` chunks, then drop the connection (a crashed or restarted server)."""
    return Reply(content=content, die_after=after)


#: How models write a tool call as text (see team/text_tools.py).
TEXT_CALL_FORMATS = (
    "json",
    "fenced-json",
    "fenced-json-inline",
    "tool_call-tag",
    "functools",
    "python_tag",
    "mistral",
    "function-tag",
)


def written_call(name: str, arguments: dict[str, Any] | str | None, fmt: str) -> str:
    """A tool call written as text in format `fmt` (one of TEXT_CALL_FORMATS)."""
    args = json.loads(arguments) if isinstance(arguments, str) else (arguments or {})
    obj = {"name": name, "arguments": args}
    one = json.dumps(obj, indent=2)
    if fmt == "json":
        return one
    if fmt == "fenced-json":
        return f"```json\n{one}\n```"
    if fmt == "fenced-json-inline":  # as Qwen2.5-Coder wrote it through llama.cpp
        return f"```json {json.dumps(obj)} ```"
    if fmt == "tool_call-tag":
        return f"<tool_call>\n{json.dumps(obj)}\n</tool_call>"
    if fmt == "functools":
        return f"functools[{json.dumps(obj)}]"
    if fmt == "python_tag":
        return "<|python_tag|>" + json.dumps({"name": name, "parameters": args})
    if fmt == "mistral":
        return f"[TOOL_CALLS] [{json.dumps(obj)}]"
    if fmt == "function-tag":
        return f"<function={name}>{json.dumps(args)}</function>"
    raise ValueError(f"unknown text call format {fmt!r}")


def unused_port() -> int:
    """A port nothing listens on (bound then released), for connection-refused tests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased (clients differ in case)
    body: Any


ReplyLike = Reply | str | ToolCall | list[ToolCall]
Script = ReplyLike | Sequence[ReplyLike] | Callable[[dict[str, Any]], ReplyLike]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that cut its stream short (a stop, a cut reply): expected
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked SSE, as the SDK expects
    server: _Server
    timeout = 30  # an idle keep-alive connection never pins a thread for long

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean

    # -- routing -------------------------------------------------------------

    def do_GET(self) -> None:
        owner = self.server.owner
        self._record(None)
        if not self._authorized():
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in owner.models
            ]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, _err_body(f"Unknown request URL: GET {path}", code="unknown_url"))

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._record(raw.decode(errors="replace"))
            self._json(400, _err_body("We could not parse the JSON body of your request."))
            return
        self._record(body)
        if not self._authorized():
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._json(404, _err_body(f"Unknown request URL: POST {path}", code="unknown_url"))
            return
        with owner._lock:
            owner.requests.append(body)
        problem = _openai_validation(body) if owner.strict else None
        if problem:
            self._json(400, _err_body(problem[1], param=problem[0]))
            return
        try:
            reply = owner._next_reply(body)
        except Exception as exc:  # a broken responder must fail the test visibly, not hang it
            self._json(
                500, _err_body(f"FakeOpenAIServer responder raised {exc!r}", type="server_error")
            )
            return
        if reply.delay and owner._stopping.wait(reply.delay):
            return
        self._answer(body, reply)

    # -- helpers -------------------------------------------------------------

    def _record(self, body: Any) -> None:
        owner = self.server.owner
        with owner._lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            owner.received.append(Received(self.command, self.path, headers, body))

    def _authorized(self) -> bool:
        expected = self.server.owner.api_key
        if expected is None:
            return True
        got = self.headers.get("Authorization", "")
        if got == f"Bearer {expected}":
            return True
        key = got.removeprefix("Bearer ").strip()
        shown = f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) > 8 else "***"
        message = (
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        self._json(401, _err_body(message, code="invalid_api_key"))
        return False

    def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, req: dict[str, Any], reply: Reply) -> None:
        if reply.raw is not None:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.raw)))
            self.end_headers()
            self.wfile.write(reply.raw)
            return
        if reply.status != 200:
            self._json(reply.status, reply.error_body or _err_body("error"), reply.headers)
            return
        model = req.get("model", "fake-model")
        if req.get("stream"):
            include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
            self._stream(model, reply, include_usage, _usage(req, reply))
        else:
            self._json(200, _completion(model, reply, _usage(req, reply)), reply.headers)

    def _stream(self, model: str, reply: Reply, include_usage: bool, usage: dict[str, int]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        sent = 0
        owner = self.server.owner
        for event in _sse_events(model, reply, include_usage, usage):
            if reply.die_after is not None and sent >= reply.die_after:
                self.wfile.flush()
                self.close_connection = True  # no terminating chunk: the client sees a broken body
                return
            try:
                self._chunk(f"data: {event}\n\n".encode())
            except (ConnectionResetError, BrokenPipeError):
                self.close_connection = True
                with owner._lock:
                    owner.streams_cut.append(sent)  # the client left after `sent` chunks
                return
            sent += 1
            if reply.pace and owner._stopping.wait(reply.pace):
                return
        with owner._lock:
            owner.streams_sent.append(sent)
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _err_body(
    message: str,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _openai_validation(body: dict[str, Any]) -> tuple[str, str] | None:
    """The request-shape checks of OpenAI's API that clients trip over: (param, message)."""
    if not body.get("model"):
        return "model", "you must provide a model parameter"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages", "'messages' must be a non-empty array"
    if body.get("stream_options") is not None and not body.get("stream"):
        return (
            "stream_options",
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        )
    if body.get("parallel_tool_calls") is not None and not body.get("tools"):
        return (
            "parallel_tool_calls",
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.",
        )
    return None


def _usage(req: dict[str, Any], reply: Reply) -> dict[str, int]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = 1 + len(json.dumps(req.get("messages", []))) // 4
        completion = len(split_text(reply.content)) if reply.content else 0
        completion += sum(1 + len(tc.arguments) // 4 for tc in reply.tool_calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _completion(model: str, reply: Reply, usage: dict[str, int]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": tc.id,
                "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments},
            }
            for tc in reply.tool_calls
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:20]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(reply)}
        ],
        "usage": usage,
    }


def _sse_events(model: str, reply: Reply, include_usage: bool, usage: dict[str, int]) -> list[str]:
    """The chunk sequence OpenAI sends: role, content pieces, tool-call deltas, finish, usage."""
    cid = f"chatcmpl-{uuid.uuid4().hex[:20]}"
    created = int(time.time())

    def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> str:
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = usage if delta is None else None
        return json.dumps(body)

    events = []
    if reply.tool_calls and not reply.content:
        events.append(chunk({"role": "assistant", "content": None, "refusal": None}))
    else:
        events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
    if reply.content:
        for piece in reply.chunks or split_text(reply.content):
            events.append(chunk({"content": piece}))
    for index, tc in enumerate(reply.tool_calls):
        head = {
            "index": index,
            "id": tc.id,
            "type": "function",
            "function": {"name": tc.name, "arguments": ""},
        }
        events.append(chunk({"tool_calls": [head]}))
        args = tc.arguments
        step = reply.arg_chunk or max(1, min(8, len(args) // 3 or 1))  # several pieces, split mid-token like OpenAI
        for start in range(0, len(args), step):
            piece = {"index": index, "function": {"arguments": args[start : start + step]}}
            events.append(chunk({"tool_calls": [piece]}))
    events.append(chunk({}, _finish(reply)))
    if include_usage:
        events.append(chunk(None))
    return events


class FakeOpenAIServer:
    """An OpenAI-compatible endpoint on 127.0.0.1 with scripted answers.

    `api_key`: when set, requests without `Authorization: Bearer <api_key>` get
    OpenAI's 401 `invalid_api_key` error. `models` is what GET /v1/models lists.
    `strict` (default) answers 400 to request shapes OpenAI rejects, such as
    `stream_options` without `stream` or `parallel_tool_calls` without `tools`.
    When a list script runs out, the server answers 500 so the test fails loudly.
    """

    def __init__(
        self,
        script: Script = "OK",
        *,
        api_key: str | None = None,
        models: Sequence[str] = ("fake-model",),
        strict: bool = True,
        calls_as_text: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.strict = strict
        self.models = list(models)
        self.requests: list[dict[str, Any]] = []  # chat completion bodies, in order
        self.streams_sent: list[int] = []  # chunks of each stream sent whole
        self.streams_cut: list[int] = []  # chunks sent of each stream the client left early
        self.calls_as_text = calls_as_text
        self.received: list[Received] = []  # every request: method, path, headers, body
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._set_script(script)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def _set_script(self, script: Script) -> None:
        if callable(script):
            self._responder: Callable[[dict[str, Any]], ReplyLike] = script
        else:
            queue = [script] if isinstance(script, Reply | str | ToolCall) else list(script)

            def from_queue(_req: dict[str, Any]) -> ReplyLike:
                if not queue:
                    return error(500, "FakeOpenAIServer: script exhausted", type="server_error")
                return queue.pop(0)

            self._responder = from_queue

    def set_script(self, script: Script) -> None:
        """Replace the answers (e.g. between two phases of a test)."""
        with self._lock:
            self._set_script(script)

    def _next_reply(self, req: dict[str, Any]) -> Reply:
        with self._lock:
            responder = self._responder
            reply = responder(req)
        if isinstance(reply, str):
            reply = text(reply)
        elif isinstance(reply, ToolCall):
            reply = Reply(tool_calls=[reply])
        elif isinstance(reply, list):
            reply = Reply(tool_calls=list(reply))
        if self.calls_as_text and reply.tool_calls:
            written = "\n".join(written_call(tc.name, tc.arguments, self.calls_as_text) for tc in reply.tool_calls)
            reply = Reply(content=((reply.content or "") + "\n" + written).lstrip("\n"), usage=reply.usage,
                          delay=reply.delay, pace=reply.pace)
        return reply

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # -- lifecycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeOpenAIServer",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections so no handler thread lingers."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeOpenAIServer:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
