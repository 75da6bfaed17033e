"""Hangar's shared layer: domain logic, data access and HTTP glue used by every function."""

__version__ = "0.1.0"
