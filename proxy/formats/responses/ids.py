"""Identifiers and timestamps for Responses objects, kept behind two module functions so tests can replace them
(monkeypatch `new_id` and `now`) and a stream's final object can be compared with `render_response`'s.

OpenAI's ids are a prefix and 48 hex characters (`resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b`);
ours have the same shape. Like proxy.ids they come from the process's `random` (identifiers, not secrets).
"""

import random
import time

RESPONSE, MESSAGE, FUNCTION_CALL, CUSTOM_TOOL_CALL, REASONING = "resp", "msg", "fc", "ctc", "rs"


def new_id(prefix: str) -> str:
    return f"{prefix}_{random.randbytes(24).hex()}"


def now() -> int:
    """`created_at`: whole Unix seconds, as OpenAI sends it."""
    return int(time.time())
