"""`hangar.store.kms.decrypt_reused`: a webhook's secret is decrypted by KMS once in a while, not once
per delivery attempt; a new secret is never answered with an old one; memory stays bounded; the
plaintext is never logged or shown."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hangar.core import clock
from hangar.store import kms
from support import AwsStack

CONTEXT = {"orgId": "org-1", "webhookId": "wh-1", "purpose": "webhook-signing-secret"}


@pytest.fixture
def decrypts(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ciphertexts KMS was asked to decrypt."""
    client = kms._client()
    asked: list[str] = []
    real = client.decrypt

    def counted(**arguments: Any) -> Any:
        asked.append(arguments["CiphertextBlob"])
        return real(**arguments)

    monkeypatch.setattr(client, "decrypt", counted)
    yield asked


def _secret(plaintext: str, context: dict[str, str] = CONTEXT) -> str:
    ciphertext = kms.encrypt(plaintext, context)
    assert ciphertext is not None
    return ciphertext


def test_the_same_secret_is_decrypted_by_kms_once_in_its_window(decrypts: list[str]) -> None:
    ciphertext = _secret("whsec_first")
    assert [kms.decrypt_reused(ciphertext, CONTEXT) for _ in range(5)] == ["whsec_first"] * 5
    assert len(decrypts) == 1
    clock.advance(kms.REUSED_SECONDS - 1)
    assert kms.decrypt_reused(ciphertext, CONTEXT) == "whsec_first"
    assert len(decrypts) == 1
    clock.advance(1)  # its window is over: KMS again (a disabled key stops deliveries within the window)
    assert kms.decrypt_reused(ciphertext, CONTEXT) == "whsec_first"
    assert len(decrypts) == 2


def test_a_new_secret_is_never_answered_with_the_old_one(decrypts: list[str]) -> None:
    old, new = _secret("whsec_old"), _secret("whsec_new")
    assert kms.decrypt_reused(old, CONTEXT) == "whsec_old"
    assert kms.decrypt_reused(new, CONTEXT) == "whsec_new"
    other_context = {**CONTEXT, "webhookId": "wh-2"}
    assert kms.decrypt_reused(_secret("whsec_other", other_context), other_context) == "whsec_other"
    assert len(decrypts) == 3


def test_the_wrong_context_is_refused_by_kms_even_after_the_right_one_was_reused(decrypts: list[str]) -> None:
    ciphertext = _secret("whsec_bound")
    assert kms.decrypt_reused(ciphertext, CONTEXT) == "whsec_bound"
    with pytest.raises(Exception, match="InvalidCiphertext"):
        kms.decrypt_reused(ciphertext, {**CONTEXT, "orgId": "org-2"})


def test_memory_is_bounded_least_recently_used_first(decrypts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kms, "REUSED_MAX", 3)
    ciphertexts = [_secret(f"whsec_{index}") for index in range(4)]
    for ciphertext in ciphertexts[:3]:
        kms.decrypt_reused(ciphertext, CONTEXT)
    kms.decrypt_reused(ciphertexts[0], CONTEXT)  # used again: the least recently used is now the second
    kms.decrypt_reused(ciphertexts[3], CONTEXT)
    assert len(kms.REUSED) == 3 and len(decrypts) == 4
    kms.decrypt_reused(ciphertexts[0], CONTEXT)
    assert len(decrypts) == 4
    kms.decrypt_reused(ciphertexts[1], CONTEXT)
    assert len(decrypts) == 5


def test_the_plaintext_is_never_logged_or_shown(decrypts: list[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ciphertext = _secret("whsec_do_not_print")
    kms.decrypt_reused(ciphertext, CONTEXT)
    kms.decrypt_reused(ciphertext, CONTEXT)
    assert "whsec_do_not_print" not in caplog.text
    assert "whsec_do_not_print" not in repr(kms.REUSED) and "whsec_do_not_print" not in str(kms.REUSED)
