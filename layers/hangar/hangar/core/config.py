"""Configuration: every setting a function reads, modelled once and read from the environment once per
process, at the first `get_settings()` (the entry points call it at import): an invalid value fails that
cold start with a `ConfigurationError` naming the variable, rather than a request later.

The model validates the environment itself (the pattern of the handler cookbook's env modeler), not
through pydantic-settings: importing pydantic-settings costs every cold start ~25 ms of CPU (it loads its
CLI, dotenv and cloud secret-manager sources eagerly), for nothing Hangar uses (docs/decisions.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

# What template.yaml's JwtSecret parameter holds when nobody set one (a JWKS deployment: `sam deploy
# --guided` needs a non-empty default for a NoEcho parameter). Never a secret: refused for HS256.
JWT_SECRET_NOT_SET = "not-set-use-JwtJwksUrl-or-a-secret-of-32-bytes-or-more"
# RFC 7518 §3.2: an HMAC key at least as long as the hash. Shorter secrets are guessable offline.
MIN_JWT_SECRET_BYTES = 32
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"})


class ConfigurationError(ValueError):
    """The environment holds a value a setting cannot take; the message names the variable."""


# The settings that hold secrets: SecretStr (masked in a repr or a log line), never echoed in an error.
SECRET_SETTINGS = frozenset({"jwt_secret", "token_pepper"})


class Settings(BaseModel):
    """Values come from environment variables of the same name in upper case (template.yaml sets them;
    an empty one counts as unset). Lists are comma-separated; USAGE_PLAN_IDS is `plan=id,plan=id`."""

    runners_table: str = "hangar-runners"
    tokens_table: str = "hangar-tokens"
    jobs_table: str = "hangar-jobs"
    orgs_table: str = "hangar-orgs"
    idempotency_table: str = "hangar-idempotency"
    # Job logs and artifact records (one table), and the bucket artifacts are uploaded to.
    job_outputs_table: str = "hangar-job-outputs"
    # The audit log (GET /v1/audit-events): one item per audited change, kept 365 days.
    audit_events_table: str = "hangar-audit-events"
    artifacts_bucket: str = "hangar-artifacts"
    # Webhooks and their deliveries (one table), the queue deliveries go through, the stack's event bus,
    # and whether webhooks may point at loopback (template parameter AllowInsecureWebhooks; local only).
    webhooks_table: str = "hangar-webhooks"
    delivery_queue_url: str = ""
    event_bus_name: str = ""
    allow_insecure_webhooks: bool = False

    # JWT: algorithms come from configuration only, never from the token header. No secret has a
    # default: a deployment that configures HS256 without a real one refuses every JWT (fail closed).
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256"])
    jwt_secret: SecretStr = SecretStr("")
    jwt_jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = "hangar"
    # JWT verification details (README "Authentication"): clock-skew leeway on exp/nbf/iat; how long a
    # JWKS is cached and how long its fetch may take.
    jwt_leeway_seconds: int = Field(default=60, ge=0, le=300)
    jwt_jwks_cache_seconds: int = Field(default=300, ge=60, le=86400)
    jwt_jwks_timeout_seconds: float = Field(default=2.0, gt=0, le=5)
    # Claims mapping: the claim naming the tenant (a namespaced name works: https://example.com/org),
    # the claims holding scopes (a space-separated string or a list; all named ones count), a prefix
    # the issuer puts before Hangar's scope names (Cognito: `<resource server id>/`), and the claim
    # holding the audience (`aud`; Cognito access tokens carry the app client in `client_id`).
    jwt_org_claim: str = Field(default="org", min_length=1)
    jwt_scope_claim: list[str] = Field(default_factory=lambda: ["scope", "scp"])
    jwt_scope_prefix: str = ""
    jwt_audience_claim: str = Field(default="aud", min_length=1)

    # Token pepper: the environment locally, Secrets Manager in AWS (TOKEN_PEPPER_SECRET_ID).
    token_pepper: SecretStr = SecretStr("")
    token_pepper_secret_id: str = ""

    # KMS key that encrypts a new runner token until the runner first authenticates (setup-info).
    setup_token_kms_key_id: str = ""

    # Partition keys of the LiveByHeartbeat and DueByDeadline indexes (README "Sizing": one per 7,500
    # runners). Raise it only: entries in a shard past a lowered count would not be swept.
    index_shards: int = Field(default=4, ge=1, le=1000)

    default_plan: Literal["free", "team", "enterprise"] = "free"
    stale_after_seconds: int = Field(default=90, ge=1)
    heartbeat_interval_seconds: int = Field(default=30, ge=1)
    poll_interval_seconds: int = Field(default=10, ge=1)
    enrollment_token_ttl_seconds: int = Field(default=1800, ge=1)

    # Job logs and artifacts (template parameters LogRetentionDays, JobLogMaxBytes, ArtifactMaxBytes,
    # ArtifactsPerJob): kept this many days, a log capped at this many UTF-8 bytes, artifacts bounded.
    log_retention_days: int = Field(default=30, ge=1)
    job_log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    artifact_max_bytes: int = Field(default=100 * 1024 * 1024, ge=0)
    artifacts_per_job: int = Field(default=20, ge=0)

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
    # At most this many tenant keys are made by auto-provisioning; past it new tenants share their plan's
    # key until an operator licenses them (docs/limits.md). API Gateway allows 10,000 keys per account
    # and region, for every stack in it.
    tenant_key_limit: int = Field(default=5000, ge=0)

    @field_validator("jwt_algorithms", "jwt_scope_claim", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """`HS256, RS256` → ["HS256", "RS256"] (empty parts dropped); a list (from code) as it is."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("usage_plan_ids", mode="before")
    @classmethod
    def _plan_ids(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        pairs = [part.strip().split("=", 1) for part in value.split(",") if part.strip()]
        if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
            raise ValueError("expected plan=usage-plan-id pairs, comma-separated")
        return {plan.strip(): plan_id.strip() for plan, plan_id in pairs}

    @model_validator(mode="after")
    def _heartbeats_before_stale(self) -> Settings:
        if self.stale_after_seconds <= self.heartbeat_interval_seconds:
            raise ValueError(
                f"STALE_AFTER_SECONDS ({self.stale_after_seconds}) must exceed HEARTBEAT_INTERVAL_SECONDS "
                f"({self.heartbeat_interval_seconds}), or runners go offline between two heartbeats"
            )
        return self

    def jwt_configuration_problem(self) -> str | None:
        """Why JWTs cannot be verified safely with this configuration (None when they can)."""
        algorithms = set(self.jwt_algorithms)
        unknown = algorithms - HMAC_ALGORITHMS - ASYMMETRIC_ALGORITHMS
        if not algorithms or unknown:
            return f"JWT_ALGORITHMS must name HS256/384/512 or RS/ES/PS algorithms, not {sorted(unknown) or 'nothing'}"
        if algorithms & HMAC_ALGORITHMS and algorithms & ASYMMETRIC_ALGORITHMS:
            return "JWT_ALGORITHMS mixes HMAC (HS*) with public-key algorithms; choose one kind"
        if not self.jwt_issuer:
            return "JWT_ISSUER is not set"
        if algorithms <= ASYMMETRIC_ALGORITHMS:
            return None if self.jwt_jwks_url else "RS/ES/PS algorithms need JWT_JWKS_URL"
        if self.jwt_jwks_url:
            return "HS* algorithms verify with JWT_SECRET: unset JWT_JWKS_URL, or use RS/ES/PS algorithms"
        secret = self.jwt_secret.get_secret_value()
        if not secret or secret == JWT_SECRET_NOT_SET:
            return "JWT_SECRET is not set, and HS* algorithms need one"
        if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            return f"JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes"
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings this environment (default `os.environ`) gives, or a ConfigurationError naming
        each variable at fault and why."""
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if env.get(name.upper())}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ConfigurationError(_configuration_problems(error)) from None


def _configuration_problems(error: ValidationError) -> str:
    """Each refused value as `VARIABLE='value': why (setting name)`; a secret's value is never shown."""
    problems = []
    for detail in error.errors(include_url=False):
        why = detail["msg"].removeprefix("Value error, ")
        field = str(detail["loc"][0]) if detail["loc"] else ""
        if not field:  # a rule across settings: its message names the variables
            problems.append(why)
            continue
        shown = "" if field in SECRET_SETTINGS else f"={detail['input']!r}"
        problems.append(f"{field.upper()}{shown}: {why} (setting {field})")
    return "Invalid configuration: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read and validated once (the first call: a cold start)."""
    return Settings.from_env()
