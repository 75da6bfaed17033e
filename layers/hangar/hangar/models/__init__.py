"""Pydantic models: request bodies (validated by the resolver) and the views each dialect returns."""
