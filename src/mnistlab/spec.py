"""The base of every specification: frozen, strict about unknown fields, parsed in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from mnistlab.errors import SpecError, spec_error

S = TypeVar("S", bound="Spec")


MAX_INT = 2**63 - 1  # SQLite's INTEGER, torch's int64 and NumPy's seeds all stop here


class Spec(BaseModel):
    """Frozen pydantic model that rejects unknown fields, non-finite floats and huge integers.

    A float field takes no NaN or infinity (`.inf`, `1e999`): every number a spec holds is
    meant finite. An integer (alone or in a list) is bounded by `MAX_INT`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _int64(cls, value: Any) -> Any:
        items = value if isinstance(value, tuple | list) else (value,)
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_INT:
                raise ValueError(f"must be at most 2**63-1 ({MAX_INT})")
        return value


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
