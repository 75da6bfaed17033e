"""Powertools Logger and Metrics: one instance of each per process, shared by every module.

No Powertools Tracer: creating one imports the X-Ray SDK (about 95 ms of every cold start, tracing on or
off) and the SDK brings a second botocore into the layer. Lambda's active tracing and API Gateway's
tracing (template.yaml) still record every request end to end; see docs/decisions.md, "Performance".
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics

# Powertools' ColdStart metric (`capture_cold_start_metric=True` in `hangar.api.http.lambda_handler`)
# carries a `function_name` dimension: with each function's own name that is one custom metric per API
# function (42, about $12.60 a month, over a third of the stack's fixed cost). One shared name makes it one
# metric for the whole API; a function's own cold starts are in its REPORT lines (`Init Duration`), which
# docs/deploy.md's Logs Insights query counts. docs/decisions.md, "Cold start metric".
COLD_START_FUNCTION_NAME = "hangar-api"

logger = Logger()
metrics = Metrics(namespace="Hangar", function_name=COLD_START_FUNCTION_NAME)

# Most functions publish no metric of their own on most invocations; Powertools then flushes nothing and
# warns about it every time (a stderr line per invocation in the logs). Nothing is lost: keep it quiet.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
