"""Powertools Logger and Metrics: one instance of each per process, shared by every module.

No Powertools Tracer: creating one imports the X-Ray SDK (about 95 ms of every cold start, tracing on or
off) and the SDK brings a second botocore into the layer. Lambda's active tracing and API Gateway's
tracing (template.yaml) still record every request end to end; see docs/decisions.md, "Performance".
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics(namespace="Hangar")

# Most functions publish no metric of their own on most invocations; Powertools then flushes nothing and
# warns about it every time (a stderr line per invocation in the logs). Nothing is lost: keep it quiet.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
