"""Tool calls that a model *wrote* as text, turned into real calls (or into an error it can fix).

Small local models served by llama.cpp, Ollama or vLLM often answer a request with
tools by writing the call into the message text instead of a structured
`tool_calls` delta (Qwen2.5-Coder via llama.cpp writes a fenced JSON object with
`finish_reason=stop`). The formats understood here:

| format | looks like |
|---|---|
| `json` | `{"name": "run_code", "arguments": {...}}` alone, or on its own line after a preamble |
| `fenced-json` | the same inside a ```` ```json ```` fence (or ```` ```tool_call ````, or a bare fence) |
| `tool_call-tag` | Hermes / Qwen: `<tool_call>{...}</tool_call>` (the closing tag may be missing at the end) |
| `functools` | Firefunction: `functools[{...}, ...]` |
| `python_tag` | Llama 3: `<\\|python_tag\\|>{"name": ..., "parameters": {...}}` or `<\\|python_tag\\|>fn(a=1)` |
| `mistral` | `[TOOL_CALLS] [{...}]` |
| `function-tag` | Llama 3.1 custom: `<function=name>{...}</function>` |

A call object may say `arguments`, `parameters`, `args`, `input` or `tool_input`; the
arguments may be an object or a JSON string of one; `{"type": "function",
"function": {...}}` and `{"tool_calls": [...]}` wrappers are unwrapped. JSON is read
leniently (raw newlines inside strings, single quotes, Python literals), as small
models write it.

`parse_text_tool_calls` decides what a finished text holds; `TextCallHolder` sits on
the stream and holds back text that may become a call, so the call is stripped from
what is shown and a complete call ends the stream at once (a call at the start of a
runaway reply is caught right there). `describe_text_tool_call` is the one wording
of "the model wrote a call as text we could not use", shared by the run's guard and
`doctor`.

One module over the ~400-line guide on purpose: the holder on the stream and the parser
of a finished text share one scanner of candidate regions (`_candidates`, `_Brackets`,
the openers and fence languages); split in two, each half would import the other's
private parts.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Prefix of the id of every FunctionCall parsed from text; the run marks such calls.
TEXT_CALL_ID_PREFIX = "textcall_"

FORMAT_LABELS = {
    "json": "a JSON object",
    "fenced-json": "fenced JSON",
    "tool_call-tag": "<tool_call> tags",
    "functools": "functools[…]",
    "python_tag": "<|python_tag|>",
    "mistral": "[TOOL_CALLS]",
    "function-tag": "<function=…> tags",
}

_ARG_KEYS = ("arguments", "parameters", "args", "input", "tool_input")
_NAME_KEYS = ("name", "tool", "tool_name", "function_name")
_IDENT = re.compile(r"^[A-Za-z_][\w.\-]*$")
_FENCE_OPEN = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n?")
_FENCE_LANGS = {"", "json", "json5", "tool_call", "tool_calls", "tool", "function_call", "javascript", "js"}


@dataclass
class TextCall:
    name: str
    arguments: dict[str, Any]
    fmt: str

    def function_call(self) -> Any:
        from autogen_core import FunctionCall

        return FunctionCall(
            id=f"{TEXT_CALL_ID_PREFIX}{self.fmt.replace('-', '_')}_{uuid.uuid4().hex[:12]}",
            name=self.name,
            arguments=json.dumps(self.arguments, ensure_ascii=False),
        )


@dataclass
class Parsed:
    """What a text holds: usable `calls` (first one first), or a call-like block that
    cannot be used (`problem`), plus the text without the call (`text`)."""

    calls: list[TextCall] = field(default_factory=list)
    text: str = ""
    problem: str | None = None
    raw: str = ""  # the call as written
    fmt: str = ""


@dataclass
class _Candidate:
    start: int
    end: int
    fmt: str
    body: str
    complete: bool = True


def parsed_call_note(agent: str, call_id: str, name: str) -> str | None:
    """The transcript's mark for a call that was parsed from text (None for a real one)."""
    if not call_id.startswith(TEXT_CALL_ID_PREFIX):
        return None
    code = call_id[len(TEXT_CALL_ID_PREFIX) :].rsplit("_", 1)[0]
    how = next((label for fmt, label in FORMAT_LABELS.items() if fmt.replace("-", "_") == code), "text")
    return f"{agent} wrote the {name} call as {how}: parsed from text into a tool call"


# --------------------------------------------------------------------------- tools


def tool_specs(tools: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """{name: JSON schema of its parameters} for AutoGen `Tool`s or `ToolSchema` dicts."""
    specs: dict[str, dict[str, Any]] = {}
    for tool in tools:
        schema = tool if isinstance(tool, Mapping) else getattr(tool, "schema", None)
        if not isinstance(schema, Mapping) or not schema.get("name"):
            continue
        params = schema.get("parameters")
        specs[str(schema["name"])] = dict(params) if isinstance(params, Mapping) else {}
    return specs


def _signature(name: str, params: Mapping[str, Any]) -> str:
    props = params.get("properties")
    return f"{name}({', '.join(props if isinstance(props, Mapping) else {})})"


def tools_list(specs: Mapping[str, Mapping[str, Any]]) -> str:
    return ", ".join(_signature(n, p) for n, p in specs.items()) or "(none)"


# --------------------------------------------------------------------------- lenient JSON

_DECODER = json.JSONDecoder(strict=False)  # raw newlines and tabs inside strings are fine


def _strip_comments(text: str) -> str:
    """`// …` and `/* … */` outside strings removed, and commas before `}`/`]` (JSON5-ish,
    as small models write it: `"data_file": "x.csv", // the file`)."""
    out: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote is not None:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in "\"'":
            quote = ch
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        out.append(ch)
        i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def _close_brackets(text: str) -> str:
    """`text` with the brackets it leaves open closed at the end (a small model often drops
    the last `}` of a call)."""
    stack: list[str] = []
    quote = False
    escape = False
    for ch in text:
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                quote = False
            continue
        if ch == '"':
            quote = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack and stack[-1] == ch:
            stack.pop()
    if quote or not stack:
        return text
    return text.rstrip().rstrip(",") + "".join(reversed(stack))


def _loads(text: str) -> Any:
    """JSON as small models write it; raises ValueError with JSON's own message."""
    text = text.strip()
    try:
        value, end = _DECODER.raw_decode(text)
        if text[end:].strip(" \t\r\n;,"):
            raise json.JSONDecodeError("Extra data", text, end)
        return value
    except json.JSONDecodeError as first:
        cleaned = _strip_comments(text)
        attempts = [cleaned, _close_brackets(cleaned)]
        if cleaned.startswith("{{") and cleaned.endswith("}}"):  # template-escaped: {{"name": …}}
            attempts.insert(0, cleaned[1:-1])
        for attempt in attempts:
            try:
                return _DECODER.decode(attempt)
            except json.JSONDecodeError:
                pass
        pythonish = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", cleaned)))
        for attempt in (text, pythonish):
            try:
                return ast.literal_eval(attempt)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
        raise ValueError(f"{first.msg} at line {first.lineno} column {first.colno}") from None


class _Brackets:
    """Incremental `_balanced_end`: feed text piece by piece, learn where the bracket closes."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.quote: str | None = None
        self.escape = False
        self.prev = ""
        self.broken = False

    def feed(self, piece: str) -> int | None:
        """Index in `piece` just after the closing bracket, or None (not yet / broken)."""
        pairs = {"{": "}", "[": "]", "(": ")"}
        for i, ch in enumerate(piece):
            prev, self.prev = self.prev, ch
            if self.quote is not None:
                if self.escape:
                    self.escape = False
                elif ch == "\\":
                    self.escape = True
                elif ch == self.quote:
                    self.quote = None
                continue
            if ch in "\"'":
                if ch == '"' or prev in "{[(,:= \t\n":
                    self.quote = ch
                continue
            if ch in pairs:
                self.stack.append(pairs[ch])
            elif ch in "}])":
                if not self.stack or self.stack[-1] != ch:
                    self.broken = True
                    return None
                self.stack.pop()
                if not self.stack:
                    return i + 1
        return None


def _balanced_end(text: str, start: int) -> int | None:
    """Index after the bracket that closes the one at `start` (string-aware), or None."""
    got = _Brackets().feed(text[start:])
    return None if got is None else start + got


# --------------------------------------------------------------------------- call objects


def _call_objects(value: Any) -> list[dict[str, Any]] | None:
    """The call dicts in a decoded value, or None if it is not call-shaped."""
    if isinstance(value, list):
        out: list[dict[str, Any]] = []
        for item in value:
            got = _call_objects(item)
            if got is None:
                return None
            out.extend(got)
        return out or None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("tool_calls"), list):
        return _call_objects(value["tool_calls"])
    if isinstance(value.get("function"), dict) and set(value) <= {"function", "type", "id", "index"}:
        return _call_objects(value["function"])
    name = next((value[k] for k in _NAME_KEYS if isinstance(value.get(k), str)), None)
    if name is None or not _IDENT.match(name):
        return None
    if "description" in value or _schema_like(value.get("parameters")):
        return None  # a tool *definition* (a small model listing tools it imagines), not a call
    extra = set(value) - {*_NAME_KEYS, *_ARG_KEYS, "id", "type"}
    if extra and not any(k in value for k in _ARG_KEYS):
        return None  # {"name": "Alice", "age": 31} is data, not a call
    if len(extra) > 1:
        return None
    return [value]


def _schema_like(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "object" and isinstance(value.get("properties"), dict)


def _call_like(value: Any, names: set[str]) -> bool:
    objects = _call_objects(value)
    if not objects:
        return False
    obj = objects[0]
    name = next(obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str))
    return any(k in obj for k in _ARG_KEYS) or _bare_name(name) in names


def _bare_name(name: str) -> str:
    return name.split(".", 1)[1] if name.startswith("functions.") else name


def _to_call(obj: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]], fmt: str) -> TextCall | str:
    """A usable call, or why it is not one (a sentence the model can act on)."""
    name = _bare_name(next(obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)))
    if name not in specs:  # transfer_to_code_agent, Run_Code: the same name but for case and separators
        same = [n for n in specs if _squash(n) == _squash(name)]
        if len(same) != 1:
            return f"there is no tool named '{name}'"
        name = same[0]
    raw = next((obj[k] for k in _ARG_KEYS if k in obj), None)
    params = specs[name]
    args: Any
    if raw is None:
        args = {}
    elif isinstance(raw, str):
        try:
            args = _loads(raw) if raw.strip() else {}
        except ValueError:
            args = None
        if not isinstance(args, dict):
            required = [p for p in params.get("required", []) if isinstance(p, str)]
            if len(required) == 1:  # run_code("print(1)"): the one required parameter
                args = {required[0]: raw}
            else:
                return f"the arguments of '{name}' are not a JSON object"
    else:
        args = raw
    if not isinstance(args, dict):
        return f"the arguments of '{name}' are not a JSON object"
    if not params.get("properties") and params.get("additionalProperties") is not True:
        args = {}  # a tool without parameters (a handoff): what a small model adds is noise
    missing = [p for p in params.get("required", []) if isinstance(p, str) and p not in args]
    if missing:
        return f"'{name}' needs {', '.join(repr(m) for m in missing)}"
    return TextCall(name=name, arguments=args, fmt=fmt)


_NAME_FIELD = re.compile(r"""^\s*[{\[]?\s*\{?\s*["']?(?:name|tool)["']?\s*:\s*["']([\w.\-]+)["']""")


def _parameterless_call(body: str, specs: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The tool a broken call names when that tool takes no parameters (a handoff), else None."""
    found = _NAME_FIELD.match(body)
    if found is None:
        return None
    name = _bare_name(found.group(1))
    same = [n for n in specs if n == name or _squash(n) == _squash(name)]
    if len(same) != 1 or specs[same[0]].get("properties"):
        return None
    return same[0]


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _python_calls(body: str) -> list[dict[str, Any]] | None:
    """`fn(a=1); other.call(b="x")` (Llama 3's built-in tool syntax) as call dicts."""
    try:
        tree = ast.parse(body.strip(), mode="exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    out = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call):
            return None
        call = stmt.value
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "call":
            func = func.value
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name is None or call.args:
            return None
        try:
            args = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
        except ValueError:
            return None
        out.append({"name": name, "arguments": args})
    return out or None


# --------------------------------------------------------------------------- finding candidates

_TAGS: tuple[tuple[str, str, str], ...] = (
    ("<tool_call>", "</tool_call>", "tool_call-tag"),
    ("<|tool_call|>", "<|/tool_call|>", "tool_call-tag"),
    ("<|python_tag|>", "<|eom_id|>", "python_tag"),
)
_OPENERS = ("```", "<tool_call>", "<|tool_call|>", "<|python_tag|>", "functools[", "[TOOL_CALLS]", "<function=")


def _candidates(text: str) -> list[_Candidate]:
    """Every region of `text` that may be a written call, in order."""
    found: list[_Candidate] = []
    pos = 0
    while (match := _FENCE_OPEN.search(text, pos)) is not None:
        lang = match.group(1).lower()
        close = text.find("```", match.end())
        end = len(text) if close < 0 else close + 3
        if lang in _FENCE_LANGS:  # a ```python fence is skipped whole, closing fence included
            body = text[match.end() : close if close >= 0 else len(text)]
            found.append(_Candidate(match.start(), end, "fenced-json", body, complete=close >= 0))
        pos = end
    for opener, closer, fmt in _TAGS:
        pos = text.find(opener)
        while pos >= 0:
            close = text.find(closer, pos + len(opener))
            alt = -1
            if fmt == "python_tag":
                alt = text.find("<|eot_id|>", pos + len(opener))
            ends = [e for e in (close, alt) if e >= 0]
            stop = min(ends) if ends else -1
            body = text[pos + len(opener) : stop if stop >= 0 else len(text)]
            end = len(text) if stop < 0 else stop + (len(closer) if stop == close else len("<|eot_id|>"))
            if stop < 0:  # no closing mark: the call is the JSON right after the tag
                first = len(body) - len(body.lstrip())
                bal = _balanced_end(body, first) if body[first : first + 1] in ("{", "[") else None
                if bal is not None:
                    body, end = body[:bal], pos + len(opener) + bal
            found.append(_Candidate(pos, end, fmt, body, complete=stop >= 0))
            pos = text.find(opener, end)
    for opener, fmt in (("functools", "functools"), ("[TOOL_CALLS]", "mistral")):
        pos = text.find(opener)
        while pos >= 0:
            bracket = text.find("[", pos + len(opener))
            if bracket < 0 or text[pos + len(opener) : bracket].strip():
                pos = text.find(opener, pos + 1)
                continue
            balanced = _balanced_end(text, bracket)
            end = balanced if balanced is not None else len(text)
            found.append(_Candidate(pos, end, fmt, text[bracket:end], complete=balanced is not None))
            pos = text.find(opener, end)
    for match in re.finditer(r"<function=([\w.\-]+)>", text):
        close = text.find("</function>", match.end())
        end = len(text) if close < 0 else close + len("</function>")
        body = json.dumps({"name": match.group(1)})[:-1] + ', "arguments": ' + (
            text[match.end() : close if close >= 0 else len(text)].strip() or "{}"
        ) + "}"
        found.append(_Candidate(match.start(), end, "function-tag", body, complete=close >= 0))
    # bare JSON: the whole answer, or an object/array starting a line after a preamble
    for match in re.finditer(r"(?m)^[ \t]*([{\[])", text):
        start = match.start(1)
        if any(c.start <= start < c.end for c in found):
            continue
        balanced = _balanced_end(text, start)
        end = balanced if balanced is not None else len(text)
        found.append(_Candidate(start, end, "json", text[start:end], complete=balanced is not None))
    found.sort(key=lambda c: c.start)
    return found


def _decode_candidate(cand: _Candidate) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(call dicts, None) or (None, why the JSON is broken) or (None, None) for not-a-call."""
    body = cand.body.strip()
    if cand.fmt == "python_tag" and body and body[0] not in "{[":
        return _python_calls(body), None
    if not body or body[0] not in "{[":
        return None, None
    try:
        value = _loads(body)
    except ValueError as exc:
        many = _loads_sequence(body)  # one call per line (JSON lines), as small models write several
        if many is None:
            return None, str(exc)
        value = many
    return _call_objects(value), None


def _loads_sequence(text: str) -> list[Any] | None:
    """Several JSON values one after another (whitespace, commas or semicolons between)."""
    text = _strip_comments(text)
    values: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,;":
            pos += 1
        if pos >= len(text):
            break
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError:
            return None
        values.append(value)
    return values if len(values) > 1 else None


def _looks_called(body: str) -> bool:
    """Broken JSON that was still meant as a call: it names a call and its arguments (and is
    not a tool *definition*, with a description and a parameters schema)."""
    if re.search(r"[\"']description[\"']\s*:", body) and re.search(r"[\"']properties[\"']\s*:", body):
        return False
    return bool(re.search(r"[\"']?(?:name|tool)[\"']?\s*:", body)) and bool(
        re.search(r"[\"']?(?:" + "|".join(_ARG_KEYS) + r")[\"']?\s*:", body)
    )


def parse_text_tool_calls(text: str | None, tools: Mapping[str, Mapping[str, Any]] | Iterable[Any]) -> Parsed | None:
    """What `text` holds: None when no written call is in it, else a `Parsed` with the
    usable call(s) or the problem with the first call-like block.

    `tools`: {name: parameters schema} (see `tool_specs`) or the request's tools.
    """
    if not text:
        return None
    specs = tools if isinstance(tools, Mapping) else tool_specs(tools)
    names = set(specs)
    first_problem: tuple[_Candidate, str] | None = None
    for cand in _candidates(text):
        objects, broken = _decode_candidate(cand)
        explicit = cand.fmt not in ("json", "fenced-json")  # tags say "this is a call" themselves
        if objects is None:
            bare = _parameterless_call(cand.body, specs) if broken is not None else None
            if bare is not None:  # a handoff whose (unneeded) arguments are not JSON
                rest = (text[: cand.start] + text[cand.end :]).strip()
                return Parsed(calls=[TextCall(bare, {}, cand.fmt)], text=rest, raw=text[cand.start : cand.end], fmt=cand.fmt)
            if broken is not None and (explicit or _looks_called(cand.body)) and first_problem is None:
                first_problem = (cand, f"the call's JSON is broken ({broken})")
            elif explicit and first_problem is None and cand.body.strip():
                first_problem = (cand, "the call could not be read (expected a JSON object with name and arguments)")
            continue
        if not explicit and not _call_like(objects if len(objects) > 1 else objects[0], names):
            continue
        results = [_to_call(obj, specs, cand.fmt) for obj in objects]
        calls = [r for r in results if isinstance(r, TextCall)]
        if calls:
            rest = (text[: cand.start] + text[cand.end :]).strip()
            return Parsed(calls=calls[:1], text=rest, raw=text[cand.start : cand.end], fmt=cand.fmt)
        if first_problem is None:
            first_problem = (cand, str(results[0]))
    if first_problem is None:
        return None
    cand, problem = first_problem
    rest = (text[: cand.start] + text[cand.end :]).strip()
    return Parsed(text=rest, problem=problem, raw=text[cand.start : cand.end], fmt=cand.fmt)


#: Ends the line the client shows when it sends a written call back to the model.
CORRECTION_MARK = "— asked the model to correct it"


def correction_note(problem: str | None) -> str:
    return f"\n\n⚠ sbteam: {problem} {CORRECTION_MARK}\n\n"


def after_corrections(text: str) -> str:
    """The model's last attempt in a reply that went back to it (what the guard judges)."""
    at = text.rfind(CORRECTION_MARK)
    return text if at < 0 else text[at + len(CORRECTION_MARK) :]


def correction_message(parsed: Parsed, specs: Mapping[str, Mapping[str, Any]]) -> str:
    """What the model is told when its written call cannot be used."""
    return (
        f"Your tool call could not be used: {parsed.problem}. The tools you can call are: "
        f"{tools_list(specs)}. Call one of them with a JSON object "
        '{"name": "<tool>", "arguments": {...}} (or through the tool-calling interface), '
        "or answer in plain text without a tool call."
    )


# --------------------------------------------------------------------------- the stream side


class TextCallHolder:
    """Holds back streamed text that may be a written call.

    `feed(chunk)` returns the text that can be shown now; `found` is set once a
    complete region holding a call (usable or not) has arrived, so the caller can end
    the stream there. `finish()` returns what is still held. Text that turns out not
    to be a call is released unchanged, so nothing is lost, only delayed. Work per
    chunk is proportional to the chunk (a region's end is searched incrementally).
    """

    MAX_HELD = 8 * 1024  # longer: shown as it streams (a call that long is still parsed at the end)

    def __init__(self, specs: Mapping[str, Mapping[str, Any]]) -> None:
        self.specs = specs
        self.text = ""  # everything fed
        self._shown = 0  # text[:_shown] has been released
        self._scan_from = 0  # where the search for the next opener goes on
        self._skip_fence = False
        self.found: Parsed | None = None
        self._start: int | None = None  # the held region
        self._kind = ""  # "fence" | "tag" | "bracket"
        self._closers: tuple[str, ...] = ()
        self._pos = 0  # where the search for the region's end goes on
        self._brackets: _Brackets | None = None

    def feed(self, chunk: str) -> str:
        self.text += chunk
        if self.found is not None:
            return ""
        upto = self._scan()
        released = self.text[self._shown : upto] if upto > self._shown else ""
        self._shown = max(self._shown, upto)
        return released

    def _is_line_start(self, pos: int) -> bool:
        line_start = self.text.rfind("\n", 0, pos) + 1
        return self.text[line_start:pos].strip() == ""

    def _find_opener(self) -> int | None:
        """Start the next held region; return how far text may be released if none starts."""
        text = self.text
        pos = max(self._scan_from, self._shown)
        if self._skip_fence:  # inside a fence that is not a call: its closing fence opens nothing
            close = text.find("```", pos)
            if close < 0:
                self._scan_from = max(pos, len(text) - 2)
                return self._scan_from
            self._skip_fence = False
            pos = self._scan_from = close + 3
        while pos < len(text):
            ch = text[pos]
            if ch in "`<f[{":
                rest = text[pos : pos + 16]
                if any(rest.startswith(o) for o in _OPENERS) or (ch in "{[" and self._is_line_start(pos)):
                    self._start, self._kind, self._pos, self._brackets = pos, "", pos, None
                    return None
                if any(o.startswith(rest) for o in _OPENERS) and len(rest) < 16:
                    return pos  # maybe an opener split across chunks: wait for more
            pos += 1
        return len(text)

    def _classify(self) -> bool | None:
        """Set the region's kind. True: hold it; False: not a call, release; None: need more text."""
        text, start = self.text, self._start
        assert start is not None
        rest = text[start:]
        if any(len(rest) < len(o) and o.startswith(rest) for o in _OPENERS):
            return None  # "[TOO" may still become "[TOOL_CALLS]"
        if rest.startswith("```"):
            head = re.match(r"```[ \t]*([\w+-]*)", rest)
            assert head is not None
            if head.end() == len(rest):
                return None  # the language may go on
            if head.group(1).lower() not in _FENCE_LANGS:
                self._skip_fence = True  # ```python and the like: shown as it streams
                self._scan_from = start + head.end()
                return False
            self._kind, self._closers, self._pos = "fence", ("```",), start + head.end()
            return True
        for opener, closer, fmt in _TAGS:
            if rest.startswith(opener):
                if fmt == "python_tag":  # usually no closing mark: the JSON's own end ends it
                    after = rest[len(opener) :]
                    if not after.strip():
                        return None
                    if after.lstrip()[0] in "{[":
                        self._kind, self._brackets = "bracket", _Brackets()
                        self._pos = start + len(opener) + (len(after) - len(after.lstrip()))
                        return True
                extra = ("<|eot_id|>",) if fmt == "python_tag" else ()
                self._kind, self._closers, self._pos = "tag", (closer, *extra), start + len(opener)
                return True
        if rest.startswith("<function="):
            self._kind, self._closers, self._pos = "tag", ("</function>",), start + len("<function=")
            return True
        for opener in ("functools", "[TOOL_CALLS]"):
            if rest.startswith(opener):
                after = rest[len(opener) :]
                if not after.strip():
                    return None
                if not after.lstrip().startswith("["):
                    return False
                self._kind, self._brackets = "bracket", _Brackets()
                self._pos = start + len(opener) + (len(after) - len(after.lstrip()))
                return True
        if rest[:1] in "{[":
            self._kind, self._brackets, self._pos = "bracket", _Brackets(), start
            return True
        return False

    def _region_end(self) -> int | None:
        """Absolute index after the region's end, or None if it has not arrived."""
        text = self.text
        if self._kind in ("fence", "tag"):
            longest = max(len(c) for c in self._closers)
            from_ = max(self._pos, 0)
            ends = [i + len(c) for c in self._closers if (i := text.find(c, from_)) >= 0]
            if ends:
                return min(ends)
            self._pos = max(self._pos, len(text) - longest + 1)
            return None
        assert self._brackets is not None
        piece = text[self._pos :]
        got = self._brackets.feed(piece)
        if got is not None:
            return self._pos + got
        self._pos = len(text)
        if self._brackets.broken:
            return -1
        return None

    def _scan(self) -> int:
        """Advance; return how far text may be released."""
        while True:
            if self._start is None:
                upto = self._find_opener()
                if upto is not None:
                    return upto
            start = self._start
            assert start is not None
            if not self._kind:
                kind = self._classify()
                if kind is None:
                    return start
                if kind is False:
                    self._release_region(max(start + 1, self._scan_from))
                    continue
            end = self._region_end()
            if end == -1:  # brackets that do not match: not JSON
                self._release_region(len(self.text))
                continue
            if end is None:
                if len(self.text) - start > self.MAX_HELD:  # long: show it as it streams
                    fence = self._kind == "fence"
                    self._release_region(len(self.text))
                    self._skip_fence = fence  # its closing fence opens nothing
                    continue
                return start
            parsed = parse_text_tool_calls(self.text[start:end], self.specs)
            if parsed is not None:
                self.found = parsed
                return start
            self._release_region(end)

    def _release_region(self, upto: int) -> None:
        self._start, self._kind, self._brackets = None, "", None
        self._scan_from = max(self._scan_from, upto)

    def finish(self) -> str:
        """Everything not yet released (the stream ended). A held region that is a call
        (an unclosed `<tool_call>`, a `<|python_tag|>` call) is kept back as `found`."""
        if self.found is None and self._start is not None:
            parsed = parse_text_tool_calls(self.text[self._start :], self.specs)
            if parsed is not None:
                self.found = parsed
                rest = self.text[self._shown : self._start]
                self._shown = self._start
                return rest
        rest = self.text[self._shown :]
        self._shown = len(self.text)
        return rest


# --------------------------------------------------------------------------- one wording

_OTHER_MARKERS = ("<tool_call>", "<|tool_call|>", "<|python_tag|>", "[tool_calls]", "<function_call>", "<function=",
                  "<|action_start|>", "functools[")


def _excerpt(text: str, limit: int = 90) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def looks_like_text_tool_call(text: str | None, tool_names: Iterable[str] = ()) -> bool:
    """True when a model *wrote* a tool call instead of making one (any format, even
    one that cannot be parsed). Prose that merely mentions a tool, and ordinary JSON
    data, do not count."""
    if not text:
        return False
    names = {n for n in tool_names if n}
    stripped = text.strip()
    lowered = stripped.lower()
    if any(m in lowered for m in _OTHER_MARKERS):
        return True
    for cand in _candidates(stripped):
        objects, broken = _decode_candidate(cand)
        if objects is not None and _call_like(objects if len(objects) > 1 else objects[0], names):
            return True
        if objects is None and broken is not None and _looks_called(cand.body):
            return True
    # Python-call or ReAct style at the start of the answer (or of its first fence).
    body = re.sub(r"^```[\w-]*[ \t]*\n", "", stripped)
    call_names = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    head = rf"(?:functions\.)?(?:transfer_to_\w+{'|' + call_names if call_names else ''})"
    if re.match(rf"{head}\s*\(", body):
        return True
    return bool(call_names and re.match(rf"(?i)action:\s*(?:{call_names})\b", body))


def describe_text_tool_call(
    text: str | None,
    tools: Sequence[str] | Mapping[str, Mapping[str, Any]],
    *,
    text_tools: bool,
    model: str = "",
    agent: str = "",
    variable: str = "OPENAI_MODEL",
) -> str | None:
    """The one line for "the model wrote a tool call as text that was not used", or
    None when `text` holds no written call. Used by the run's guard and by `doctor`.

    With text tool calls off, it says what arrived and that they can be turned on
    (the model has a tool template; only the format is off). With them on, the call
    reached here only because it could not be used: it says why.
    """
    names = list(tools)
    if not looks_like_text_tool_call(text, names):
        return None
    specs = tools if isinstance(tools, Mapping) else {n: {} for n in names}
    parsed = parse_text_tool_calls(text, specs)
    shown = _excerpt(parsed.raw if parsed is not None and parsed.raw else text or "")
    who = f"{agent}'s model" if agent else "the model"
    if model:
        who += f" '{model}'"
    if not text_tools:
        return (
            f"{who} wrote a tool call as plain text instead of calling the tool (received: {shown}) — "
            f"set SBTEAM_TEXT_TOOLS=on to turn such calls into real ones, or choose a model "
            f"whose server returns tool_calls ({variable})"
        )
    if parsed is not None and parsed.problem:
        why = parsed.problem
    elif parsed is not None and parsed.calls:  # usable by name: its arguments were what did not fit
        why = f"the arguments do not fit '{parsed.calls[0].name}'"
    else:
        why = "it is in no format sbteam reads"
    return (
        f"{who} wrote a tool call as plain text that could not be used: {why} (received: {shown}) — "
        f"choose a model that follows the tool format better ({variable})"
    )
