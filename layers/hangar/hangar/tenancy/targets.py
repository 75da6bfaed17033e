"""Targets: create within the plan's target limit and allowed visibilities, list, read, delete."""

from __future__ import annotations

import secrets

from hangar.audit import trail as audit
from hangar.core import clock
from hangar.core.errors import Forbidden, NotFound
from hangar.core.plans import License, Visibility
from hangar.store import orgs
from hangar.store import targets as target_store
from hangar.store.targets import Target
from hangar.store.transactions import TransactionCancelled, transact
from hangar.tenancy.models.targets import TargetView


def new_target_id() -> str:
    return "tgt_" + secrets.token_hex(8)


def visibility_allowed(license_: License, visibility: str | None) -> bool:
    """Whether the license allows targets of `visibility` (a target without one is not allowed)."""
    return visibility is not None and visibility in license_.allowedTargetVisibilities


def require_license_allows(license_: License, visibility: str) -> None:
    """403 unless the license is active and allows targets of `visibility`."""
    if not license_.active:
        raise Forbidden(f"The license is {license_.licenseState}", code="license_inactive")
    if not visibility_allowed(license_, visibility):
        raise Forbidden(
            f"The {license_.plan} plan does not allow {visibility} targets "
            f"(allowed: {', '.join(license_.allowedTargetVisibilities) or 'none'})",
            code="visibility_not_allowed",
            field="visibility",
        )


def view(target: Target) -> TargetView:
    return TargetView(
        id=target.target_id,
        name=target.name,
        url=target.url,
        visibility=target.visibility,
        createdAt=target.created_at,
    )


def create_target(org_id: str, name: str, url: str, visibility: Visibility) -> Target:
    """A new target, counted against the plan's target limit in the same transaction that stores it."""
    org = orgs.ensure_org(org_id)
    license_ = org.license()
    require_license_allows(license_, visibility)
    target = Target(
        org_id=org_id,
        target_id=new_target_id(),
        name=name,
        url=url,
        visibility=visibility,
        created_at=clock.iso(),
    )
    try:
        transact(
            {
                "org": orgs.reserve_target_op(org_id, license_.targetLimit),
                "target": target_store.put_target_op(target),
                "audit": audit.operation("target.create", org_id, "target", target.target_id),
            }
        )
    except TransactionCancelled as cancelled:
        if cancelled["org"].condition_failed:
            refused = orgs.org_from(cancelled["org"].item) or org
            if refused.license_state != "active":
                raise Forbidden(f"The license is {refused.license_state}", code="license_inactive") from None
            raise Forbidden(
                f"The plan's target limit ({license_.targetLimit}) is reached", code="target_limit_reached"
            ) from None
        raise
    return target


def get_target(org_id: str, target_id: str) -> Target:
    """One of the tenant's targets; an unknown id or another tenant's is a 404 naming `targetId`."""
    target = target_store.get_target(org_id, target_id) if target_id else None
    if target is None:
        raise NotFound(f"Target {target_id} not found", field="targetId")
    return target


def list_targets(org_id: str, limit: int, cursor: str | None) -> tuple[list[Target], str | None]:
    return target_store.list_targets(org_id, limit, cursor)


def delete_target(org_id: str, target_id: str) -> None:
    """Deletes the target and frees its place under the target limit, in one transaction."""
    try:
        transact(
            {
                "target": target_store.delete_target_op(org_id, target_id),
                "org": orgs.release_target_op(org_id),
                "audit": audit.operation("target.delete", org_id, "target", target_id),
            }
        )
    except TransactionCancelled as cancelled:
        if cancelled["target"].condition_failed:
            raise NotFound(f"Target {target_id} not found", field="targetId") from None
        raise
