"""KMS envelope for the one secret Hangar keeps for a while: a new runner token awaiting first use."""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

import boto3

from hangar.core.config import get_settings


@lru_cache(maxsize=1)
def _client() -> Any:
    return boto3.client("kms")


def encrypt(plaintext: str, context: dict[str, str]) -> str | None:
    """Ciphertext (base64) bound to `context`, or None when no key is configured."""
    key_id = get_settings().setup_token_kms_key_id
    if not key_id:
        return None
    response = _client().encrypt(KeyId=key_id, Plaintext=plaintext.encode(), EncryptionContext=context)
    return base64.b64encode(response["CiphertextBlob"]).decode()


def decrypt(ciphertext: str, context: dict[str, str]) -> str:
    response = _client().decrypt(CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=context)
    plaintext: bytes = response["Plaintext"]
    return plaintext.decode()
