"""Reading template.yaml: short-form tags, resources by type, local names of tables and buckets, and
parameter overrides (`HANGAR_PARAM_<Name>`)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from local import REPO_ROOT

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "hangar-local"
LOCAL_API_ID = "local"
FUNCTION_TYPE = "AWS::Serverless::Function"
API_TYPE = "AWS::Serverless::Api"
TABLE_TYPE = "AWS::DynamoDB::Table"
BUCKET_TYPE = "AWS::S3::Bucket"
PARAMETER_ENV_PREFIX = "HANGAR_PARAM_"


class NotSupportedLocally(Exception):
    """A template feature local/ does not emulate: add it to local/ (and its tests) before using it."""

    def __init__(self, feature: str, resource: str | None = None) -> None:
        self.feature, self.resource = feature, resource
        where = f" ({resource})" if resource else ""
        super().__init__(f"not supported by local/: {feature}{where}; teach local/ before the template uses it")


@contextmanager
def in_resource(resource: str) -> Iterator[None]:
    """Names `resource` in a NotSupportedLocally raised without one (by the intrinsics, say) inside."""
    try:
        yield
    except NotSupportedLocally as error:
        if error.resource is not None:
            raise
        raise NotSupportedLocally(error.feature, resource) from None


class Unresolvable(Exception):
    """A value with no local equivalent (e.g. `!GetAtt Queue.Arn`): the setting using it is left unset."""


class NoValue(Exception):
    """`!Ref AWS::NoValue`: the enclosing property is dropped."""


class _TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path | None = None) -> dict[str, Any]:
    """The template as plain data; short-form tags become their long form ({"Ref": x}, {"Fn::Sub": s})."""
    source = Path(path or REPO_ROOT / "template.yaml")
    data = yaml.load(source.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506 - SafeLoader
    if not isinstance(data, dict):
        raise ValueError(f"{source}: not a template (top level is not a mapping)")
    return data


def resources(template: Mapping[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for resources of the given types (all when none given)."""
    return {
        str(logical_id): resource
        for logical_id, resource in (template.get("Resources") or {}).items()
        if isinstance(resource, dict) and (not types or resource.get("Type") in types)
    }


def table_prefix() -> str:
    """HANGAR_TABLE_PREFIX: lets several local stacks share one DynamoDB (each e2e server has its own)."""
    return os.environ.get("HANGAR_TABLE_PREFIX", "")


def local_table_name(logical_id: str) -> str:
    """What `!Ref Table` is locally: the table's logical id, after HANGAR_TABLE_PREFIX."""
    return table_prefix() + logical_id


def local_bucket_name(logical_id: str) -> str:
    """What `!Ref Bucket` is locally (S3 names are lower case): hangar-local-artifactsbucket. Buckets are
    always in the embedded backend, one per local stack, so they need no prefix."""
    return f"{STACK_NAME}-{logical_id.lower()}"


def parameter_overrides_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`HANGAR_PARAM_AgentPackageSpec=./agent` overrides that template parameter, as
    `sam deploy --parameter-overrides` would."""
    environ = os.environ if environ is None else environ
    return {k.removeprefix(PARAMETER_ENV_PREFIX): v for k, v in environ.items() if k.startswith(PARAMETER_ENV_PREFIX)}
