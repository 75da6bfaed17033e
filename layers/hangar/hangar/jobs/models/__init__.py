"""Request and response shapes (pydantic) of the jobs package."""
