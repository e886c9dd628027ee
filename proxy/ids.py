"""Identifiers the gateway makes up, in the shapes each API's clients expect (docs/translation.md §5.5)."""

import hashlib
import random
import re
import string

_BASE62 = (string.ascii_letters + string.digits).encode()
# Random bytes mapped onto base62 in one C call. These are identifiers, not secrets (keys use the secrets module):
# the process's Mersenne Twister (seeded from the OS, reseeded after fork) avoids a syscall per id, and the
# slightly uneven mapping (256 is not a multiple of 62) costs an id ~0.1 bit of its ~142.
_TO_BASE62 = bytes(_BASE62[i % 62] for i in range(256))
_VALID_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def request_id_header(api: str) -> str:
    """The response header that carries the request id for a caller of `api`: Anthropic's clients read
    `request-id`, OpenAI's (chat completions and Responses) `x-request-id`."""
    return "request-id" if api == "anthropic" else "x-request-id"


def _random62(n: int = 24) -> str:
    return random.randbytes(n).translate(_TO_BASE62).decode()


def message_id() -> str:
    return "msg_" + _random62()


def tool_use_id() -> str:
    return "toolu_" + _random62()


def completion_id() -> str:
    return "chatcmpl-" + _random62(29)


def request_id() -> str:
    return "req_" + _random62()


def sanitize_tool_id(raw: str | None) -> str:
    """P-16: keep a valid id, repair an invalid one deterministically (so history ids still match), invent one
    when missing."""
    if not raw:
        return tool_use_id()
    if _VALID_TOOL_ID.match(raw):
        return raw
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "_", raw)
    return f"{cleaned}_{hashlib.sha256(raw.encode()).hexdigest()[:6]}"
