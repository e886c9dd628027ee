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
