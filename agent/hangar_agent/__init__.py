"""Hangar reference runner agent (stdlib only)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
