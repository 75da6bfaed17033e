"""Fixtures of the in-process integration tests (moto, handlers called directly)."""

from __future__ import annotations

import pytest
from builders import set_license
from support import AwsStack, unique_org


@pytest.fixture
def org(aws: AwsStack) -> str:
    """A fresh org on the team plan, in a fresh moto."""
    org_id = unique_org()
    set_license(org_id, "team")
    return org_id
