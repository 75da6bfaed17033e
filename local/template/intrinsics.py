"""The intrinsic functions template.yaml uses, evaluated locally."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from local.template.reading import (
    ACCOUNT_ID,
    API_TYPE,
    BUCKET_TYPE,
    FUNCTION_TYPE,
    LOCAL_API_ID,
    REGION,
    STACK_NAME,
    TABLE_TYPE,
    NotSupportedLocally,
    NoValue,
    Unresolvable,
    local_bucket_name,
    local_table_name,
    parameter_overrides_from_env,
    resources,
)

_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": STACK_NAME,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
_SUB_RE = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """The intrinsic functions template.yaml uses (Ref, GetAtt, Sub, If, Equals, Not), evaluated against
    parameter defaults (or HANGAR_PARAM_* overrides) and what provisioning created (`refs`, `attrs`)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        refs: Mapping[str, str] | None = None,
        attrs: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.template = template
        self.refs = dict(refs or {})
        self.attrs = dict(attrs or {})
        self.parameters = parameter_overrides_from_env()
        self._resources = resources(template)

    def ref(self, name: str) -> Any:
        if name in _PSEUDO:
            return _PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        parameter = (self.template.get("Parameters") or {}).get(name)
        if parameter is not None:
            if "Default" not in parameter:
                raise Unresolvable(f"parameter {name} has no Default")
            return parameter["Default"]
        if name in self.refs:
            return self.refs[name]
        api_name, dot, attribute = name.partition(".")
        if dot and self._type(api_name) == API_TYPE:  # SAM's `!Ref Api.Stage`
            return self.get_att(api_name, attribute)
        kind = self._type(name)
        if kind == TABLE_TYPE:
            return local_table_name(name)
        if kind == BUCKET_TYPE:
            return local_bucket_name(name)
        if kind == FUNCTION_TYPE:
            return name
        if kind == API_TYPE:
            return LOCAL_API_ID
        raise Unresolvable(f"{name} ({kind}) has no local value")

    def get_att(self, name: str, attribute: str) -> Any:
        if (name, attribute) in self.attrs:
            return self.attrs[(name, attribute)]
        kind = self._type(name)
        if kind == TABLE_TYPE and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{local_table_name(name)}"
        if kind == BUCKET_TYPE and attribute == "Arn":
            return f"arn:aws:s3:::{local_bucket_name(name)}"
        if kind == FUNCTION_TYPE and attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        if kind == API_TYPE and attribute == "Stage":
            return str(self.resolve(self._resources[name].get("Properties", {}).get("StageName", "prod")))
        raise Unresolvable(f"{name}.{attribute} has no local value")

    def _type(self, name: str) -> str | None:
        return (self._resources.get(name) or {}).get("Type")

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise Unresolvable(f"no condition named {name}")
        return bool(self.resolve(conditions[name]))

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function evaluated; Unresolvable when one has no local value."""
        if isinstance(value, list):
            out = []
            for item in value:
                try:
                    out.append(self.resolve(item))
                except NoValue:
                    continue
            return out
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    raise NoValue()
                return self.ref(str(arg))
            if key == "Condition":
                return self.condition(str(arg))
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        out_map = {}
        for key, item in value.items():
            try:
                out_map[key] = self.resolve(item)
            except NoValue:
                continue
        return out_map

    def try_resolve(self, value: Any, default: Any = None) -> Any:
        """`resolve`, or `default` for a value with no local equivalent (never for an unsupported feature)."""
        try:
            return self.resolve(value)
        except (Unresolvable, NoValue):
            return default

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(str(logical_id), str(attribute))
        if name == "Sub":
            if not isinstance(arg, str):
                raise NotSupportedLocally("Fn::Sub with a variable map")
            return _SUB_RE.sub(lambda match: self._substitute(match.group(1)), arg)
        if name == "If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self.condition(str(condition)) else when_false)
        if name == "Equals":
            left, right = (self.resolve(item) for item in arg)
            return str(left) == str(right)
        if name == "Not":
            return not self.resolve(arg[0])
        raise NotSupportedLocally(f"Fn::{name}")

    def _substitute(self, expression: str) -> str:
        if expression.startswith("!"):
            raise NotSupportedLocally("the Fn::Sub escape ${!...}")
        if "." in expression and not expression.startswith("AWS::"):
            logical_id, attribute = expression.split(".", 1)
            return as_env_value(self.get_att(logical_id, attribute))
        return as_env_value(self.ref(expression))


def as_env_value(value: Any) -> str:
    """A resolved value as an environment variable (booleans as CloudFormation writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
