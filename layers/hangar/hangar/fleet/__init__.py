"""Runners: management, tokens and enrollment, the install script, heartbeats, liveness, readiness."""
