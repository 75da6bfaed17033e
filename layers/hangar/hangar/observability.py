"""Powertools Logger, Tracer and Metrics: one instance of each per process, shared by every module."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Hangar")

# Most functions publish no metric of their own on most invocations; Powertools then flushes nothing and
# warns about it every time (a stderr line per invocation in the logs). Nothing is lost: keep it quiet.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
