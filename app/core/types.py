"""The value types every model shares: ObjectIds and UTC datetimes, and the document base model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema, field_validator

OBJECT_ID_PATTERN = "^[0-9a-fA-F]{24}$"


def parse_object_id(value: Any) -> ObjectId:
    """An ObjectId from an ObjectId or a 24-hex string; ValueError for anything else."""
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str) and len(value) == 24:
        try:
            return ObjectId(value)
        except Exception:  # bson raises InvalidId or TypeError on malformed hex
            pass
    raise ValueError("must be a 24-character hexadecimal id")


PyObjectId = Annotated[
    ObjectId,
    PlainValidator(parse_object_id),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": OBJECT_ID_PATTERN, "example": "6b01333e48044420526058af"}),
]


def _as_utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError("must be a datetime")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision (what MongoDB stores) and a `Z` suffix. A
    naive datetime is UTC, as the driver decodes it without `tz_aware`."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


UTCDateTime = Annotated[
    datetime,
    PlainValidator(_as_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-11-21T06:00:00.000Z"}),
]


def utc_now() -> datetime:
    """The current time truncated to milliseconds, so what we return equals what is stored."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class DocumentModel(BaseModel):
    """A response model read from a stored document: `_id` in and out."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: PyObjectId = Field(alias="_id")


def is_valid_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON allows "\\ud800"; UTF-8, BSON and
    password hashing do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class RequestModel(BaseModel):
    """A request body: unknown fields (a forged `_id`, `user_id`, `created_at`, ...) are a 422,
    and so is a string holding a lone surrogate (it could be neither stored nor hashed)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        if isinstance(value, str) and not is_valid_unicode(value):
            raise ValueError("must be valid Unicode text (no unpaired surrogates)")
        return value
