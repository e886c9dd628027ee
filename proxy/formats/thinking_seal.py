"""Signatures for the thinking blocks the gateway makes itself.

A thinking block synthesized from an OpenAI-compatible upstream's reasoning (formats/openai: reasoning_content)
carries `gh-think-1.` + an HMAC-SHA256 over its text instead of an empty signature. When that conversation's
history comes back:
    to Anthropic (formats/anthropic/upstream_request)  the blocks minted here are removed, exactly those:
                                                       Anthropic's own blocks stay byte for byte
    to an upstream whose preset echoes reasoning       a block is echoed as reasoning_content only when its
    (formats/openai/messages_out)                      signature verifies (or it has none: a caller's own)

Pure: the key is given once at start-up (proxy/apps.py, derived from GATEWAY_ENCRYPTION_KEY); without one,
blocks get no signature and nothing counts as minted.
"""

import base64
import hashlib
import hmac

PREFIX = "gh-think-1."
_KEY_CONTEXT = b"gatehouse/thinking-signature/v1"
_key: bytes | None = None


def derive_key(secret: bytes | str | None, context: bytes) -> bytes | None:
    """A key for one use (`context`) from the gateway secret, so no two uses share key material; None: off."""
    if secret is None:
        return None
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, context, hashlib.sha256).digest()


def configure(secret: bytes | str | None) -> None:
    """Called once at start-up with a gateway secret; None switches sealing off."""
    global _key
    _key = derive_key(secret, _KEY_CONTEXT)


def mint(text: str) -> str:
    if _key is None or not text:
        return ""
    digest = hmac.new(_key, text.encode(), hashlib.sha256).digest()
    return PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def is_minted(signature) -> bool:
    """Made by this gateway's format (it is never Anthropic's): to be removed before Anthropic sees it."""
    return isinstance(signature, str) and signature.startswith(PREFIX)


def verifies(text: str, signature) -> bool:
    """Minted here over exactly this text."""
    return is_minted(signature) and bool(_key) and hmac.compare_digest(mint(text), signature)
