"""Request and response shapes (pydantic) of the fleet package."""
