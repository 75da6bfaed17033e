"""Shared vocabulary of every layer: clock, configuration, errors, observability, field types, plan catalogue."""
