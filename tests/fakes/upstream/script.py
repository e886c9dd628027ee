"""Pick the fake's behaviour from the text of the last user turn.

Same idea as TensorZero's dummy provider: the request says what the "model" does. Trigger words may sit
anywhere in a line, a colon follows the word, one optional space follows the colon, the value runs to the
end of the line. Several lines may carry triggers. The reference list is in ``__init__.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from functools import lru_cache

import orjson

DEFAULT_TEXT = "Hello from the fake upstream."
HTTP_FAILS = frozenset({"400", "401", "404", "413", "429", "500", "503", "529"})
# Failures that only make sense once a stream has started (see server.respond for the non-stream case).
STREAM_FAILS = frozenset({"midstream", "truncate", "early_eof", "hang_midstream"})
FAILS = HTTP_FAILS | STREAM_FAILS | {"timeout"}

_TRIGGER = re.compile(
    r"\b(?:(USE_TOOL|SAY_B64|SAY|THINK|JSON|STOP_AT|USAGE|FAIL_FIRST|FAIL|SLOW_CHUNKS|SLOW):[ \t]?([^\r\n]*)"
    r"|(LENGTH)\b)"
)
_USAGE = re.compile(r"\b(in|out|cache_read|cache_write)=(\d+)")
_LOREM = ("lorem", "ipsum", "dolor", "sit", "amet")


class Plan:
    """What to answer. Built once per request, rendered by wire_anthropic / wire_openai."""

    __slots__ = (
        "text", "thinking", "tools", "stop_reason", "stop_sequence", "usage", "out_tokens",
        "fail", "slow_ms", "chunk_ms",
    )

    def __init__(self) -> None:
        self.text: str | None = DEFAULT_TEXT
        self.thinking: str | None = None
        self.tools: list[tuple[str, dict]] = []
        self.stop_reason = "end_turn"  # Anthropic vocabulary; wire_openai maps it
        self.stop_sequence: str | None = None
        self.usage: dict[str, int] = {}  # USAGE: overrides (keys in, out, cache_read, cache_write)
        self.out_tokens: int | None = None  # LENGTH: forces output_tokens = max_tokens
        self.fail: str | None = None
        self.slow_ms = 0
        self.chunk_ms = 0


@lru_cache(maxsize=512)
def split(text: str, n: int) -> tuple[str, ...]:
    """`text` cut into min(n, len(text)) near-equal non-empty pieces (no pieces for "")."""
    size = len(text)
    if size == 0:
        return ()
    n = max(1, min(n, size))
    q, r = divmod(size, n)
    out, i = [], 0
    for k in range(n):
        j = i + q + (1 if k < r else 0)
        out.append(text[i:j])
        i = j
    return tuple(out)


def signature(thinking: str) -> str:
    return "fakesig_" + hashlib.sha256(thinking.encode()).hexdigest()


def tool_schema(tools: list | None, name: str) -> dict | None:
    """input_schema (Anthropic) or function.parameters (OpenAI) of the declared tool `name`."""
    for t in tools or ():
        if not isinstance(t, dict):
            continue
        fn = t.get("function") if t.get("type") == "function" else None
        if fn is not None and fn.get("name") == name:
            return fn.get("parameters") or {}
        if t.get("name") == name:
            return t.get("input_schema") or {}
    return None


def _tool_args(name: str, rest: str, tools: list | None) -> dict:
    """`USE_TOOL: name {json}` -> that object. A non-JSON rest (`USE_TOOL: Read /tmp/x`) goes into the tool's
    first required property (else first property, else "input"), as the previous fake did."""
    if not rest:
        return {}
    if rest[0] == "{":
        try:
            val = orjson.loads(rest)
            if isinstance(val, dict):
                return val
        except orjson.JSONDecodeError:
            pass
    schema = tool_schema(tools, name) or {}
    key = next(iter(schema.get("required") or ()), None) or next(iter(schema.get("properties") or ()), "input")
    return {key: rest}


def build_plan(
    text: str,
    *,
    tool_results: str | None = None,
    images: int = 0,
    tools: list | None = None,
    forced_tool: str | None = None,
    stop_seqs: tuple | list = (),
    max_tokens: int | None = None,
    fail_first_seen: set | None = None,
) -> Plan:
    p = Plan()
    says: list[str] = []
    thinks: list[str] = []
    json_text: str | None = None
    stop_at: str | None = None
    length = False
    if text and (":" in text or "LENGTH" in text):
        for m in _TRIGGER.finditer(text):
            kw, val, length_kw = m.groups()
            if length_kw:
                length = True
                continue
            val = val.rstrip()
            if kw == "SAY":
                says.append(val)
            elif kw == "SAY_B64":
                try:
                    says.append(base64.b64decode(val.strip()).decode("utf-8", "replace"))
                except (binascii.Error, ValueError):
                    says.append(val)
            elif kw == "USE_TOOL":
                name, _, rest = val.strip().partition(" ")
                if name:
                    p.tools.append((name, _tool_args(name, rest.strip(), tools)))
            elif kw == "THINK":
                thinks.append(val)
            elif kw == "JSON":
                json_text = val.strip()
            elif kw == "STOP_AT":
                stop_at = val.strip()
            elif kw == "USAGE":
                p.usage = {k: int(v) for k, v in _USAGE.findall(val)}
            elif kw == "FAIL":
                p.fail = val.split()[0] if val.split() else None
            elif kw == "FAIL_FIRST":
                key = val.strip()
                if fail_first_seen is not None and key not in fail_first_seen:
                    fail_first_seen.add(key)
                    p.fail = key.split()[0] if key else None
            elif kw == "SLOW":
                p.slow_ms = _int(val)
            elif kw == "SLOW_CHUNKS":
                p.chunk_ms = _int(val)
    if p.fail is not None and p.fail not in FAILS:
        p.fail = "400"

    if json_text is not None and forced_tool:
        try:
            args = orjson.loads(json_text)
        except orjson.JSONDecodeError:
            args = None
        p.tools.append((forced_tool, args if isinstance(args, dict) else {"value": json_text}))
        json_text = None

    if stop_at is not None:
        if stop_at and stop_at in stop_seqs:
            p.text, p.stop_reason, p.stop_sequence = "before", "stop_sequence", stop_at
        else:
            p.text = "before" + stop_at + "after"
    elif length:
        n = max(1, min(max_tokens or 16, 4096))
        p.text = " ".join(_LOREM[i % 5] for i in range(n))
        p.stop_reason, p.out_tokens = "max_tokens", n
    elif json_text is not None:
        p.text = json_text
    elif says:
        p.text = "\n".join(says)
    elif p.tools:
        p.text = None
    elif tool_results is not None:
        p.text = "Done: " + tool_results[:40]
    elif images:
        p.text = f"I see {images} image(s)."
    if thinks:
        p.thinking = "\n".join(thinks)
    if p.tools and not length:
        p.stop_reason = "tool_use"
    return p


def _int(val: str) -> int:
    try:
        return max(0, int(val.split()[0]))
    except (ValueError, IndexError):
        return 0


def usage_numbers(p: Plan, body_len: int, pieces: int) -> tuple[int, int, int, int]:
    """(input, output, cache_read, cache_write). Defaults: input = request body bytes // 4, output = number of
    content pieces the stream carries (text + thinking pieces + 3 per tool call), or max_tokens for LENGTH."""
    u = p.usage
    out = p.out_tokens if p.out_tokens is not None else pieces
    return (u.get("in", body_len // 4), u.get("out", out), u.get("cache_read", 0), u.get("cache_write", 0))


def count_pieces(p: Plan, chunks: int) -> int:
    n = 3 * len(p.tools)
    if p.text:
        n += len(split(p.text, chunks))
    if p.thinking:
        n += len(split(p.thinking, chunks))
    return n


def json_thirds(s: str) -> tuple[str, str, str]:
    """A JSON text in 3 pieces for streaming; the first may be empty for short strings."""
    a, b = len(s) // 3, 2 * len(s) // 3
    return s[:a], s[a:b], s[b:]
