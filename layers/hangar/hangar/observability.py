"""Powertools Logger, Tracer and Metrics: one instance of each per process, shared by every module."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Hangar")
