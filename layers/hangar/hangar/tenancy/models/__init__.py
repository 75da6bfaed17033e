"""Request and response shapes (pydantic) of the tenancy package."""
