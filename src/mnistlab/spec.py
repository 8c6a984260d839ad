"""The base of every specification: frozen, strict about unknown fields, parsed in one place."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mnistlab.errors import spec_error

S = TypeVar("S", bound="Spec")


class Spec(BaseModel):
    """Frozen pydantic model that rejects unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_spec(cls: type[S], data: Any, source: str | None = None) -> S:
    """Validate `data` as `cls`, raising a one-line `SpecError` that names the field."""
    if isinstance(data, cls):
        return data
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise spec_error(exc, source) from None
