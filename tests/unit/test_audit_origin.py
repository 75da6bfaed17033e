"""hangar.audit.trail without a database: the request's origin, and what `since` means."""

from __future__ import annotations

import pytest
from hangar.audit import trail as audit
from hangar.core.errors import BadRequest


@pytest.mark.parametrize(
    ("since", "bound"),
    [
        ("2026-12-01T09:30:00Z", "2026-12-01T09:30:00.000Z"),
        ("2026-12-01T10:30:00+01:00", "2026-12-01T09:30:00.000Z"),
        ("2026-12-01T09:30:00", "2026-12-01T09:30:00.000Z"),  # no offset: UTC
        ("2026-12-01", "2026-12-01T00:00:00.000Z"),
        ("2026-12-01T09:30:00.123Z", "2026-12-01T09:30:00.123Z"),
        ("2026-12-01T09:30:00.1231Z", "2026-12-01T09:30:00.124Z"),  # rounded up: 0.123 ms is before it
        ("2026-12-01T09:30:59.9999Z", "2026-12-01T09:31:00.000Z"),
    ],
)
def test_since_is_the_at_string_it_bounds(since: str, bound: str) -> None:
    assert audit.since_bound(since) == bound


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "12/01/2026", "", "9999-12-31T23:59:59.9999Z"])
def test_since_that_is_no_time_names_the_field(since: str) -> None:
    with pytest.raises(BadRequest) as refused:
        audit.since_bound(since)
    assert refused.value.field == "since"


def _event(authorizer: dict[str, str]) -> dict[str, object]:
    return {
        "requestContext": {"requestId": "req-1", "identity": {"sourceIp": "198.51.100.7"}, "authorizer": authorizer}
    }


@pytest.mark.parametrize(
    ("authorizer", "actor"),
    [
        ({"principalType": "jwt", "subject": "alice", "keyId": ""}, audit.Actor("jwt", "alice")),
        (
            {"principalType": "apikey", "subject": "0123456789ab", "keyId": "0123456789ab"},
            audit.Actor("api_key", "0123456789ab"),
        ),
        ({"principalType": "runner", "runnerId": "rnr_1"}, audit.Actor("runner", "rnr_1")),
        ({"principalType": "public", "principalId": "anonymous"}, None),
    ],
)
def test_the_origin_comes_from_the_authorizer_identity_and_request_id(
    authorizer: dict[str, str], actor: audit.Actor | None
) -> None:
    assert audit.origin_of(_event(authorizer)) == audit.RequestOrigin(actor, "198.51.100.7", "req-1")


def test_a_request_without_a_principal_cannot_write_an_anonymous_event() -> None:
    with audit.bind_request(_event({"principalType": "public"})):
        with pytest.raises(RuntimeError):
            audit.operation("target.create", "org", "target", "tgt_1")
        named = audit.operation("runner.register", "org", "runner", "rnr_1", actor=audit.Actor("runner", "rnr_1"))
    assert named["Put"]["Item"]["actor"] == {"M": {"type": {"S": "runner"}, "id": {"S": "rnr_1"}}}
    assert named["Put"]["Item"]["requestId"] == {"S": "req-1"}
