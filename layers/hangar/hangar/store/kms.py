"""KMS envelope for the secrets Hangar keeps: a new runner token awaiting first use, webhook signing secrets.

`decrypt_reused` is for a secret decrypted again and again (a webhook's, once per delivery attempt): it
keeps the plaintext in this process's memory for `REUSED_SECONDS`, at most `REUSED_MAX` of them. It is
keyed by the ciphertext and its context, so a new secret (a new ciphertext) is never answered with an
old one; the plaintext is never logged and leaves only as the return value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import boto3

from hangar.core import clock
from hangar.core.config import get_settings

REUSED_SECONDS = 300.0
REUSED_MAX = 256


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


class _ReusedPlaintexts:
    """Plaintexts by (ciphertext, context) digest, least recently used dropped first, each for a while."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the plaintexts
        return f"<reused KMS plaintexts: {len(self._entries)}>"

    @staticmethod
    def key(ciphertext: str, context: dict[str, str]) -> str:
        return hashlib.sha256(json.dumps([ciphertext, context], sort_keys=True).encode()).hexdigest()

    def get(self, key: str, now: float) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, plaintext = entry
            if not stored_at <= now < stored_at + REUSED_SECONDS:  # expired (or the clock went back)
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return plaintext

    def put(self, key: str, plaintext: str, now: float) -> None:
        with self._lock:
            self._entries[key] = (now, plaintext)
            self._entries.move_to_end(key)
            while len(self._entries) > REUSED_MAX:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


REUSED = _ReusedPlaintexts()


def decrypt_reused(ciphertext: str, context: dict[str, str]) -> str:
    """`decrypt`, answered from memory when the same ciphertext was decrypted in the last `REUSED_SECONDS`."""
    key, now = REUSED.key(ciphertext, context), clock.now()
    plaintext = REUSED.get(key, now)
    if plaintext is None:
        plaintext = decrypt(ciphertext, context)
        REUSED.put(key, plaintext, now)
    return plaintext
