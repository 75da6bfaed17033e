"""The API's REQUEST Lambda authorizers as API Gateway runs them: a missing identity source is 401 without
a call; "Unauthorized" raised is 401; a Deny, or an Allow that does not cover the method ARN, is
ACCESS_DENIED (403 unless the template says otherwise; its response template sees the Deny's context as
`$context.authorizer.*`); any other failure is 500; results are cached per identity for
ReauthorizeEvery seconds (local clock)."""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from local.outcomes import Grant, Refusal
from local.template import AuthorizerSpec, Route


class Invoker(Protocol):
    """What runs the functions (`local.functions.FunctionRegistry`; a stub in tests)."""

    def invoke(self, logical_id: str, event: Any, request_id: str | None = None) -> Any: ...


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [] if value is None else [value]


def _arn_pattern(resource: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(".".join(map(re.escape, s.split("?"))) for s in resource.split("*")) + "$")


def policy_allows(policy: Mapping[str, Any], method_arn: str) -> bool:
    """IAM evaluation as API Gateway applies it: an explicit Deny wins; otherwise an Allow must match."""
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        actions = [str(a).lower() for a in _as_list(statement.get("Action"))]
        if not any(a in ("*", "execute-api:*", "execute-api:invoke") for a in actions):
            continue
        if not any(_arn_pattern(str(r)).match(method_arn) for r in _as_list(statement.get("Resource"))):
            continue
        if str(statement.get("Effect", "")).lower() == "deny":
            return False
        allowed = allowed or str(statement.get("Effect", "")).lower() == "allow"
    return allowed


def _grant(name: str, result: Any) -> tuple[Grant, Mapping[str, Any]] | None:
    """(grant, policy) of a well-formed authorizer result; None for one API Gateway would refuse (500)."""
    if not isinstance(result, Mapping) or "principalId" not in result:
        return None
    policy, context = result.get("policyDocument"), result.get("context") or {}
    if not isinstance(policy, Mapping) or not isinstance(context, Mapping):
        return None
    if any(v is not None and not isinstance(v, str | int | float | bool) for v in context.values()):
        return None  # API Gateway takes only string, number and boolean context values
    usage_key = result.get("usageIdentifierKey")
    return Grant(name, str(result["principalId"]), dict(context), str(usage_key) if usage_key else None), policy


class Authorizers:
    """The API's authorizers and their result cache."""

    def __init__(
        self,
        specs: Mapping[str, AuthorizerSpec],
        functions: Invoker,
        now: Callable[[], float],
        log: Callable[[str], None],
    ) -> None:
        self.specs = dict(specs)
        self.functions = functions
        self.now = now
        self.log = log
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, Grant, Mapping[str, Any]]] = {}
        self._lock = threading.Lock()

    def flush(self) -> int:
        with self._lock:
            count = len(self._cache)
            self._cache.clear()
            return count

    def authorize(self, route: Route, event: Mapping[str, Any], method_arn: str, request_id: str) -> Grant | Refusal:
        """The route authorizer's grant for this request (`event`: the proxy event so far), or the refusal."""
        spec = self.specs.get(route.authorizer or "")
        if spec is None:
            self.log(f"local: {route.method} {route.path} names the unknown authorizer {route.authorizer!r}")
            return Refusal("AUTHORIZER_CONFIGURATION_ERROR")
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        query = event.get("queryStringParameters") or {}
        identity = tuple(headers.get(h.lower()) or "" for h in spec.headers) + tuple(
            query.get(q) or "" for q in spec.query_strings
        )
        if not all(identity):
            return Refusal("UNAUTHORIZED")
        key, now = (spec.name, identity), self.now()
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or cached[0] <= now:
            answer = self._invoke(spec, event, method_arn, request_id)
            if isinstance(answer, Refusal):
                return answer
            cached = (now + spec.ttl_seconds, *answer)
            if spec.ttl_seconds > 0:
                with self._lock:
                    self._cache[key] = cached
        _, grant, policy = cached
        if policy_allows(policy, method_arn):
            return grant
        # The gateway response sees a Deny's context (the reason a Hangar authorizer gives) as $context.authorizer.*
        return Refusal("ACCESS_DENIED", authorizer_context={**grant.context, "principalId": grant.principal_id})

    def _invoke(
        self, spec: AuthorizerSpec, event: Mapping[str, Any], method_arn: str, request_id: str
    ) -> tuple[Grant, Mapping[str, Any]] | Refusal:
        request = {"type": "REQUEST", "methodArn": method_arn, **{k: v for k, v in event.items() if k != "body"}}
        request.pop("isBase64Encoded", None)
        try:
            result = self.functions.invoke(spec.function_id, request, request_id)
        except Exception as error:
            if str(error) == "Unauthorized":
                return Refusal("UNAUTHORIZED")
            self.log(f"local: authorizer {spec.name} ({spec.function_id}) failed\n{traceback.format_exc()}")
            return Refusal("AUTHORIZER_FAILURE")
        answer = _grant(spec.name, result)
        if answer is None:
            self.log(f"local: authorizer {spec.name} answered what API Gateway refuses: {result!r:.300}")
            return Refusal("AUTHORIZER_CONFIGURATION_ERROR")
        return answer
