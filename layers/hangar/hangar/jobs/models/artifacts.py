"""Artifacts: the files a job leaves behind, declared by its runner and downloaded by users."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from hangar.core.models import PathId, StrictModel, View

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_ARTIFACT_NAME_LENGTH = 255


def _no_parent_reference(name: str) -> str:
    # A file name, never a path: no separator (the pattern) and no `..` that a client joining it to a
    # directory could climb with.
    if ".." in name:
        raise ValueError("must be a file name without '..'")
    return name


# A file name: no `/` or `\`, no control characters, no `..`.
ArtifactName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ARTIFACT_NAME_LENGTH, pattern=r"^[^/\\\x00-\x1f\x7f]+$"),
    AfterValidator(_no_parent_reference),
]
# A media type (type/subtype, optional parameters), as S3 stores it and serves it back.
ContentType = Annotated[
    str,
    StringConstraints(
        min_length=3, max_length=255, pattern=r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;[\x20-\x7e]*)?$"
    ),
]
# Bytes; the upper bound is the deployment's ArtifactMaxBytes (a 413 naming `size`).
ArtifactSize = Annotated[int, Field(strict=True, ge=0, description="Bytes (at most ArtifactMaxBytes, 100 MiB)")]


class CreateArtifactRequest(StrictModel):
    jobId: PathId
    name: ArtifactName
    contentType: ContentType = DEFAULT_CONTENT_TYPE
    size: ArtifactSize


class ArtifactUpload(View):
    """Where and how to upload the artifact: `method` to `uploadUrl` with exactly `headers` (the URL is
    signed for this size and content type; anything else is refused by S3) before `expiresAt`."""

    artifactId: str
    uploadUrl: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    expiresAt: str


class V1Artifact(View):
    id: str
    name: str
    contentType: str
    size: int
    createdAt: str
    downloadUrl: str
    downloadExpiresAt: str


class V1ArtifactList(View):
    artifacts: list[V1Artifact]
