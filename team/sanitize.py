"""What reaches a person is inert: one sanitiser for every text shown on a terminal.

Code output, model text, file names and error lines come from places nobody
vetted (hostile code in the sandbox, a model that read hostile data). Written
raw to a terminal, their control characters are *commands*: `ESC ] 52 ; c ; … BEL`
sets the clipboard (OSC 52), `ESC ] 0 ; … BEL` retitles the window, `ESC [ 2 J`
clears the screen, `ESC P … ESC \\` (DCS) asks the terminal for an answer that
is then typed into the app's input, `\\x9b` is a one-byte CSI on terminals that
honour C1, a lone `\\r` overwrites what was just shown, and Unicode's bidi
overrides make shown text read differently from what it is.

`inert(text)` rewrites exactly those characters into visible, harmless text:

| what | shown as |
|---|---|
| C0 controls U+0000–U+001F, except `\\n` and `\\t` | their Control Picture: `␛` for ESC, `␇` BEL, `␈` BS, `␀` NUL… (U+2400 + code) |
| `\\r` | `␍`, except in `\\r\\n`, which becomes `\\n` (a Windows line end is a line end) |
| DEL U+007F | `␡` |
| C1 controls U+0080–U+009F | `\\x80` … `\\x9f` (four characters, as Python writes them) |
| bidi embeddings/overrides U+202A–U+202E and isolates U+2066–U+2069 | `\\u202e` … (six characters) |
| lone surrogates (a file name that was not UTF-8, decoded with `surrogateescape`) | `\\xff` for the byte U+DCFF stands for; other lone surrogates `\\ud800` |

So `ESC ] 0 ; pwned BEL` is shown as `␛]0;pwned␇`: the reader sees that
something tried, and the terminal receives nothing it would act on. Newlines and
tabs stay (text keeps its shape); so do the bidi *marks* (U+200E, U+200F,
U+061C), which right-to-left text uses and which cannot reorder a whole run,
and every printable character of any script.

Properties the rest of the app relies on: the output holds no character of the
table above (`inert` is idempotent: `inert(inert(t)) == inert(t)`); text
without any of them is returned as it is (one regex scan, no copy); one
character becomes at most six, so the output is never more than 6× the input.

Machine formats keep the exact text: `--json`, `events.jsonl` and notebooks
are JSON, whose escaping (`\\u001b`) is lossless; only what a person reads
(the TUI, the headless readable stream, the Markdown export, `history`) goes
through `inert`. Streamed text (model tokens) uses `InertStream`, which holds
back a `\\r` that ends a chunk until the next chunk says whether it is a `\\r\\n`.

The TUI also installs a last-resort line filter (`tui/app.py`) that removes
whatever of `CONTROLS` still reached a rendered line: a widget that forgot to
call `inert` shows less, never sends a control sequence.
"""

from __future__ import annotations

import re

__all__ = ["CONTROLS", "InertStream", "inert", "shown_name"]

# Everything `inert` rewrites (`\r\n` first, so it wins over a lone `\r`).
_PATTERN = re.compile(
    "\r\n|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# The same characters, one at a time (`\r` included): what must never reach a terminal.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␀ … ␟ (␛ for ESC, ␍ for CR)
    if code == 0x7F:
        return "\u2421"  # ␡
    if code <= 0x9F:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the undecodable byte it stands for
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"  # bidi overrides/isolates, other lone surrogates


_TABLE = {chr(c): _visible(chr(c)) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}
_TABLE.update({chr(c): _visible(chr(c)) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
_TABLE["\r\n"] = "\n"


def _replace(match: re.Match[str]) -> str:
    found = match.group()
    shown = _TABLE.get(found)
    return shown if shown is not None else _visible(found)  # lone surrogates


def inert(text: str) -> str:
    """`text` with every terminal control, bidi override and lone surrogate made visible
    (see the module's table); newlines and tabs kept. Idempotent; at most 6× longer."""
    if _PATTERN.search(text) is None:
        return text
    return _PATTERN.sub(_replace, text)


_SURROGATES = re.compile("[\ud800-\udfff]")


def shown_name(text: str) -> str:
    """Only the lone surrogates made visible (`\\xff` for a non-UTF-8 byte of a name):
    for text that must stay exact otherwise, e.g. a file name told to the model, which
    must be encodable (an API request cannot carry a lone surrogate)."""
    if _SURROGATES.search(text) is None:
        return text
    return _SURROGATES.sub(lambda m: _visible(m.group()), text)


def raw_name(text: str) -> str:
    """The inverse of `shown_name` for names: `\\xNN` (NN ≥ 80) back to the byte it shows,
    so a model can pass a name it was shown back to a tool."""
    if "\\x" not in text:
        return text
    return re.sub(r"\\x([89a-fA-F][0-9a-fA-F])", lambda m: chr(0xDC00 + int(m.group(1), 16)), text)


class InertStream:
    """`inert` for text that arrives in chunks (streamed model tokens).

    Each chunk is made inert at once, except a `\\r` at its very end, which is
    held until the next chunk (or `flush()`) tells whether it begins a `\\r\\n`.
    The concatenation of what `feed` and `flush` return equals `inert` of the
    concatenated chunks.
    """

    def __init__(self) -> None:
        self.held = ""

    def feed(self, chunk: str) -> str:
        text = self.held + chunk if self.held else chunk
        if text.endswith("\r"):
            self.held, text = "\r", text[:-1]
        else:
            self.held = ""
        return inert(text)

    def flush(self) -> str:
        held, self.held = self.held, ""
        return inert(held)
