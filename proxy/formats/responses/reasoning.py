"""R-5: a reasoning item's `encrypted_content` carries a gateway-sealed copy of the upstream's thinking blocks
(text and signature, or redacted data), so that a client replaying its items (Codex sends `store: false` and
replays every turn) gives Anthropic back the exact signed blocks and thinking survives multi-turn tool use.

Sealed = AES-256-GCM under a key derived from the gateway's secret: nobody else can forge a block we would
restore, and the thinking stays unreadable to the client. A token we did not seal (OpenAI's own, or sealed
under an older secret) does not open, and its item is dropped. No key configured: nothing is sealed and every
`encrypted_content` is dropped, so thinking then simply does not survive between turns (P-20 handles that).

The key is the one piece of configuration in this package; the app sets it once at start-up.
"""

import base64
import os

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from proxy.canonical import RedactedThinking, Thinking

from ..thinking_seal import derive_key

PREFIX = "gh1."  # ours; OpenAI's tokens are Fernet ("gAAAAA...")
NONCE_BYTES = 12
_KEY_CONTEXT = b"gatehouse/responses/reasoning/v1"

_cipher: AESGCM | None = None


def configure(secret: bytes | str | None) -> None:
    """Called once at start-up with a gateway secret; None switches sealing off."""
    global _cipher
    key = derive_key(secret, _KEY_CONTEXT)
    _cipher = None if key is None else AESGCM(key)


def seal(blocks: list) -> str | None:
    """Thinking / RedactedThinking blocks -> a token, or None when sealing is off or there is nothing to seal."""
    if _cipher is None or not blocks:
        return None
    payload = orjson.dumps([_block_to_json(block) for block in blocks])
    nonce = os.urandom(NONCE_BYTES)
    sealed = nonce + _cipher.encrypt(nonce, payload, PREFIX.encode())
    return PREFIX + base64.urlsafe_b64encode(sealed).decode()


def open_sealed(token) -> list | None:
    """The blocks a token of ours holds, byte-exact; None for anything we cannot open."""
    if _cipher is None or not isinstance(token, str) or not token.startswith(PREFIX):
        return None
    try:
        sealed = base64.urlsafe_b64decode(token[len(PREFIX) :])
        payload = _cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], PREFIX.encode())
        return [_block_from_json(raw) for raw in orjson.loads(payload)]
    except (InvalidTag, ValueError, TypeError, KeyError):
        return None


def _block_to_json(block) -> dict:
    if isinstance(block, Thinking):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    return {"type": "redacted_thinking", "data": block.data}


def _block_from_json(raw: dict):
    if raw["type"] == "thinking":
        return Thinking(raw["thinking"], signature=raw["signature"])
    return RedactedThinking(raw["data"])
