"""The token format of DESIGN §2: shape, checksum, hashing — and junk refused before any I/O."""

import pytest
from hangar.identity import tokens
from hangar.identity.tokens import BASE62, TokenType


@pytest.mark.parametrize("token_type", list(TokenType))
def test_minted_tokens_parse_back(token_type: TokenType) -> None:
    minted = tokens.mint(token_type)
    parsed = tokens.parse(minted.raw)
    assert parsed == minted
    assert minted.raw.startswith(f"{token_type.value}_{minted.token_id}_")
    assert len(minted.token_id) == 12 and all(c in "0123456789abcdef" for c in minted.token_id)
    assert len(minted.raw) == 3 + 1 + 12 + 1 + 32 + 6


def test_every_single_character_change_is_rejected() -> None:
    raw = tokens.mint(TokenType.RUNNER).raw
    alphabet = set(BASE62 + "_-")
    for index, original in enumerate(raw):
        for replacement in alphabet - {original}:
            mutated = raw[:index] + replacement + raw[index + 1 :]
            assert tokens.parse(mutated) is None, (index, replacement)


def test_truncated_extended_and_foreign_tokens_are_rejected() -> None:
    raw = tokens.mint(TokenType.API_KEY).raw
    for bad in ["", raw[:-1], raw + "a", raw.upper(), "rn_abc123", "hgx" + raw[3:], " " + raw, raw * 2]:
        assert tokens.parse(bad) is None


def test_expected_type_is_enforced() -> None:
    raw = tokens.mint(TokenType.ENROLLMENT).raw
    assert tokens.parse(raw, TokenType.ENROLLMENT) is not None
    assert tokens.parse(raw, TokenType.RUNNER) is None


def test_hash_is_keyed_and_verified_in_constant_time() -> None:
    raw = tokens.mint(TokenType.RUNNER).raw
    stored = tokens.token_hash(raw, "pepper-a")
    assert raw not in stored
    assert tokens.verify(raw, stored, "pepper-a")
    assert not tokens.verify(raw, stored, "pepper-b")
    assert not tokens.verify(tokens.mint(TokenType.RUNNER).raw, stored, "pepper-a")
