"""Typed reading of one TOML table, with errors that name the file, the field and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import RubricError

_REQUIRED = object()

INVALID_FIELD = "{file}: {where}: found {found}; allowed: {allowed}"
MISSING_FIELD = "{file}: {where}: this field is required; allowed: {allowed}"
UNKNOWN_FIELDS = "{file}: {where}: unknown field(s) {names}; allowed fields here: {allowed}"


@dataclass(frozen=True)
class Option:
    """One field a table may hold: its accepted type, default and a description of what is allowed."""

    allowed: str
    convert: Callable[[Any], Any]
    default: Any = _REQUIRED

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


def describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({kind})"


class Invalid(ValueError):
    """Raised by a converter when a value is not allowed."""


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid
    return value


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid
    return value


def as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid
    return value


def as_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid
    return float(value)


def non_negative(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        result = convert(value)
        if result < 0:
            raise Invalid
        return result
    return checked


def positive(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        result = convert(value)
        if result <= 0:
            raise Invalid
        return result
    return checked


def one_of(choices: Iterable[str]) -> Callable[[Any], str]:
    allowed = tuple(choices)

    def checked(value: Any) -> str:
        if value not in allowed:
            raise Invalid
        return value
    return checked


def list_of(convert: Callable[[Any], Any], min_len: int = 0) -> Callable[[Any], tuple]:
    def checked(value: Any) -> tuple:
        if not isinstance(value, list) or len(value) < min_len:
            raise Invalid
        return tuple(convert(item) for item in value)
    return checked


def module_name(value: Any) -> str:
    """A dotted module name such as torch or torchvision.datasets."""
    name = as_str(value)
    if not all(part.isidentifier() for part in name.split(".")):
        raise Invalid
    return name


def int_range(value: Any) -> tuple[int, int]:
    """A `[low, high]` pair of integers with low <= high (both ends included)."""
    low, high = list_of(as_int, 2)(value)
    if len(value) != 2 or low > high:
        raise Invalid
    return low, high


def as_table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid
    return dict(value)


def anything(value: Any) -> Any:
    return value


class TableReader:
    """Reads the fields of one table; `finish()` rejects any field nobody asked for."""

    def __init__(self, file: Path, where: str, table: Any) -> None:
        self.file = file
        self.where = where
        if not isinstance(table, dict):
            raise RubricError(INVALID_FIELD.format(
                file=file, where=where, found=describe(table), allowed="a table"))
        self.table: Mapping[str, Any] = table
        self.seen: set[str] = set()

    def error(self, name: str, allowed: str) -> RubricError:
        return self.error_value(name, self.table.get(name), allowed)

    def error_value(self, path: str, value: Any, allowed: str) -> RubricError:
        """An error about a value inside a field, e.g. path `ranges.stride`."""
        return RubricError(INVALID_FIELD.format(
            file=self.file, where=self.field_path(path), found=describe(value), allowed=allowed))

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        """Name misspelled fields first: a typo would otherwise surface as a missing field."""
        allowed = set(allowed)
        unknown = sorted(set(self.table) - allowed)
        if unknown:
            raise RubricError(UNKNOWN_FIELDS.format(
                file=self.file, where=self.where or "top level",
                names=", ".join(repr(n) for n in unknown), allowed=", ".join(sorted(allowed))))

    def field_path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def take(self, name: str, option: Option) -> Any:
        self.seen.add(name)
        if name not in self.table:
            if option.required:
                raise RubricError(MISSING_FIELD.format(
                    file=self.file, where=self.field_path(name), allowed=option.allowed))
            return option.default
        try:
            return option.convert(self.table[name])
        except (Invalid, TypeError, ValueError):
            raise self.error(name, option.allowed) from None

    def take_all(self, options: Mapping[str, Option]) -> dict[str, Any]:
        self.reject_unknown(options)
        values = {name: self.take(name, option) for name, option in options.items()}
        self.finish()
        return values

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            raise RubricError(UNKNOWN_FIELDS.format(
                file=self.file, where=self.where or "top level",
                names=", ".join(repr(n) for n in unknown),
                allowed=", ".join(sorted(self.seen)) or "none"))
