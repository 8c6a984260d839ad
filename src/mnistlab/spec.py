"""The base of every specification: frozen, strict about unknown fields, parsed in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mnistlab.errors import SpecError, spec_error

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


def parse_assignments(pairs: Sequence[str], flag: str) -> dict[str, Any]:
    """`KEY=VALUE` command-line pairs as {KEY: VALUE}, each value read as YAML.

    `epochs=1` gives an int, `keys=[loss, accuracy]` a list, `scale=original` a string; a
    pair without `=` or with a malformed value is a one-line `SpecError` naming `flag`.
    """
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {flag} training.epochs=1")
        try:
            parsed[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise SpecError(f"{flag} {pair!r}: the value is not valid YAML ({problem})") from None
    return parsed
