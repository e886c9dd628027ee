"""Upstream credentials at rest: Fernet (AES-128-CBC + HMAC) under GATEWAY_ENCRYPTION_KEY."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@cache
def _fernet() -> Fernet:
    return Fernet(settings.GATEWAY_ENCRYPTION_KEY.encode())


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("credential cannot be decrypted: was GATEWAY_ENCRYPTION_KEY changed?") from None


def masked(secret: str) -> str:
    """What the admin shows of a stored secret: its last 4 characters (nothing of one shorter than 8)."""
    return f"…{secret[-4:]}" if len(secret) >= 8 else ("…" if secret else "")
