"""Configuration: every setting a function reads, modelled once and read from the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

LOCAL_JWT_SECRET = "hangar-local-dev-secret-not-for-production"


class Settings(BaseModel):
    """Values come from environment variables of the same name in upper case (template.yaml sets them)."""

    runners_table: str = "hangar-runners"
    tokens_table: str = "hangar-tokens"
    jobs_table: str = "hangar-jobs"
    orgs_table: str = "hangar-orgs"
    idempotency_table: str = "hangar-idempotency"

    # JWT: algorithms come from configuration only, never from the token header.
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256"])
    jwt_secret: str = LOCAL_JWT_SECRET
    jwt_jwks_url: str = ""
    jwt_issuer: str = "hangar-local"
    jwt_audience: str = "hangar"

    # Token pepper: the environment locally, Secrets Manager in AWS (TOKEN_PEPPER_SECRET_ID).
    token_pepper: str = ""
    token_pepper_secret_id: str = ""

    # KMS key that encrypts a new runner token until the runner first authenticates (setup-info).
    setup_token_kms_key_id: str = ""

    default_plan: Literal["free", "team", "enterprise"] = "free"
    stale_after_seconds: int = 90
    heartbeat_interval_seconds: int = 30
    poll_interval_seconds: int = 10
    enrollment_token_ttl_seconds: int = 1800

    # Where runners reach the API (setup-info, install script); derived from the request when empty.
    public_api_url: str = ""
    # What the install script pip-installs; empty: the agent wheel built with the stack (install_script).
    agent_package_spec: str = ""
    # The one browser origin (the console's, e.g. https://d123.cloudfront.net) that may read API
    # responses (CORS); empty: none, as for a console served from the API's own origin.
    cors_allowed_origin: str = ""

    # API Gateway usage plans per license plan (tenant keys are attached to these): explicit ids, or
    # found by name, `<usage_plan_name_prefix><plan>` (what template.yaml does: ids would be a cycle).
    usage_plan_ids: dict[str, str] = Field(default_factory=dict)
    usage_plan_name_prefix: str = ""
    # The API Gateway key unauthenticated routes are counted under (the public authorizer returns it).
    public_usage_key_id: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, field in cls.model_fields.items():
            raw = env.get(name.upper())
            if raw is None or raw == "":
                continue
            if field.annotation == list[str] or name == "jwt_algorithms":
                values[name] = [part.strip() for part in raw.split(",") if part.strip()]
            elif name == "usage_plan_ids":
                values[name] = dict(p.split("=", 1) for p in raw.split(",") if "=" in p)
            else:
                values[name] = raw
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
