"""Field types and base models shared by every request and view."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50

# Display names: 1–100 characters, no control characters.
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
# Routing labels: 1–64 characters from [A-Za-z0-9._:-].
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Labels = Annotated[list[Label], Field(max_length=50)]
# JSON numbers only in bodies: "2" or true is not a concurrency (query parameters stay lax: they are text).
Concurrency = Annotated[int, Field(strict=True, ge=1, le=64)]
PageLimit = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
# Ids in a path or query: anything longer is no id we issue, and invalid input (400 naming the parameter);
# an id of a valid shape that is unknown, or another tenant's, is a 404.
PathId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# What users see of a runner (hangar.fleet.liveness.runner_status).
RunnerStatus = Literal["offline", "online", "busy"]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are rejected, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class View(BaseModel):
    """Response bodies. Every field is always sent (null when unknown), so the documented schema lists
    every field as required, defaults or not."""

    model_config = ConfigDict(populate_by_name=True, json_schema_serialization_defaults_required=True)


class V1Deleted(View):
    """What a `/v1` DELETE answers."""

    id: str
    deleted: bool


def unique(labels: list[str]) -> list[str]:
    """Labels without duplicates, first occurrence kept."""
    return list(dict.fromkeys(labels))


def plain(data: Any) -> Any:
    """Pydantic models (and lists of them) as JSON-ready data; absent optional fields stay absent."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", by_alias=True, exclude_unset=False)
    if isinstance(data, list | tuple):
        return [plain(item) for item in data]
    if isinstance(data, dict):
        return {key: plain(value) for key, value in data.items()}
    return data
