"""template.yaml, read the way SAM and CloudFormation would for a local stack: functions, routes,
authorizers, gateway responses, schedules, event sources, tables and the functions' environment.

Only what template.yaml uses is understood. Anything else that would change how the stack behaves (a
TOKEN authorizer, binary media types, a greedy route, an intrinsic function not used today, ...)
raises `NotSupportedLocally` at start-up, naming the feature and the resource, so a new template
feature fails loudly instead of being silently ignored. Table names are `<HANGAR_TABLE_PREFIX><LogicalId>`.

- `reading`         loading, resources by type, local names, parameter overrides, the errors
- `intrinsics`      Ref, GetAtt, Sub, If, Equals, Not (`Resolver`)
- `function_specs`  the functions, their properties and shared environment
- `api`             the REST API: settings, CORS, routes, authorizers, gateway responses
- `events`          schedules, DynamoDB stream and SQS events
- `tables`          the tables as CreateTable arguments
"""

from local.template.api import (
    ApiSettings,
    AuthorizerSpec,
    CorsSpec,
    GatewayResponseSpec,
    Route,
    api_settings,
    authorizers,
    gateway_responses,
    routes,
)
from local.template.events import EventSourceSpec, ScheduleSpec, event_sources, schedules
from local.template.function_specs import FunctionSpec, function_environment, function_properties, functions
from local.template.intrinsics import Resolver, as_env_value
from local.template.reading import (
    ACCOUNT_ID,
    API_TYPE,
    BUCKET_TYPE,
    FUNCTION_TYPE,
    LOCAL_API_ID,
    PARAMETER_ENV_PREFIX,
    REGION,
    STACK_NAME,
    TABLE_TYPE,
    NotSupportedLocally,
    Unresolvable,
    in_resource,
    load_template,
    local_bucket_name,
    local_table_name,
    parameter_overrides_from_env,
    resources,
    table_prefix,
)
from local.template.tables import create_tables, table_definitions

__all__ = [
    "ACCOUNT_ID", "API_TYPE", "BUCKET_TYPE", "FUNCTION_TYPE", "LOCAL_API_ID", "PARAMETER_ENV_PREFIX", "REGION",
    "STACK_NAME", "TABLE_TYPE", "ApiSettings", "AuthorizerSpec", "CorsSpec", "EventSourceSpec", "FunctionSpec",
    "GatewayResponseSpec", "NotSupportedLocally", "Resolver", "Route", "ScheduleSpec", "Unresolvable", "api_settings",
    "as_env_value", "authorizers", "create_tables", "event_sources", "function_environment", "function_properties",
    "functions", "gateway_responses", "in_resource", "load_template", "local_bucket_name", "local_table_name",
    "parameter_overrides_from_env", "resources", "routes", "schedules", "table_definitions", "table_prefix",
]  # fmt: skip
