"""Errors mnistlab raises for expected mistakes: each one prints as a single line."""

from __future__ import annotations

from pydantic import ValidationError


class MnistlabError(Exception):
    """Base of every expected error; the CLI prints its message on one line, no traceback."""


class SpecError(MnistlabError, ValueError):
    """A study, model, training or data specification is invalid (CLI exit code 2)."""


class DataError(MnistlabError):
    """A data file is missing, unreadable, corrupt or does not match its checksum."""


def spec_error(exc: ValidationError, source: str | None = None) -> SpecError:
    """Turn pydantic's report into one `SpecError` line: `source: field.path: problem, got X`."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(_loc_part(p) for p in err["loc"]).replace(".[", "[")
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        got = err.get("input")
        if err["type"] not in {"missing", "union_tag_invalid"} and _short(got):
            message = f"{message}, got {got!r}"
        lines.append(f"{loc}: {message}" if loc else message)
    prefix = f"{source}: " if source else ""
    return SpecError(prefix + "; ".join(lines))


def _loc_part(part: str | int) -> str:
    return f"[{part}]" if isinstance(part, int) else str(part)


def _short(value: object) -> bool:
    return isinstance(value, str | int | float | bool) and len(repr(value)) <= 40
