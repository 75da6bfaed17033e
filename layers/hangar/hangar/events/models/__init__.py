"""Request and response shapes (pydantic) of the events package."""
