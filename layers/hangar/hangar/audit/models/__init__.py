"""Request and response shapes (pydantic) of the audit package."""
