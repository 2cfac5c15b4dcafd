"""Dataclasses to JSON data and back: the one codec for observations and reports.

Plain frozen dataclasses and these few functions, not msgspec or pydantic: neither is installed,
and what the grader needs is narrow. Nested dataclasses, tuples, lists, dicts and optional
fields; a key missing from the data takes the field's default (files written by an older
grader); a key the class does not know is kept in the class's `other` field when it has one,
else dropped (files written by a newer grader, or an executor that records more facts).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

OTHER = "other"  # a dict field that holds, and writes back at the top level, keys the class does not know


def to_data(value: Any) -> Any:
    """A dataclass (or a structure of them) as JSON-able dicts, lists and scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            if field.name != OTHER:
                data[field.name] = to_data(getattr(value, field.name))
        for key, item in getattr(value, OTHER, {}).items():
            data.setdefault(key, to_data(item))  # a known field always wins
        return data
    if isinstance(value, Mapping):
        return {key: to_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_data(item) for item in value]
    return value


def from_data(cls: type, data: Mapping[str, Any]) -> Any:
    """An instance of dataclass `cls` from `to_data` output. TypeError / ValueError when `data`
    lacks a field that has no default or holds the wrong kind of value."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    values = {name: _convert(hints[name], data[name], name) for name in known if name in data and name != OTHER}
    if OTHER in known:
        values[OTHER] = {key: item for key, item in data.items() if key not in known}
    return cls(**values)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(hint: Any, value: Any, name: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or value is None and (origin in (typing.Union, types.UnionType) and type(None) in args):
        return value
    if origin in (typing.Union, types.UnionType):
        return _convert(next(a for a in args if a is not type(None)), value, name)
    if dataclasses.is_dataclass(hint):
        return from_data(hint, value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name}: expected a list, got {type(value).__name__}")
        items = [_convert(args[0] if args else Any, item, name) for item in value]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name}: expected an object, got {type(value).__name__}")
        item_hint = args[1] if len(args) == 2 else Any
        return {key: _convert(item_hint, item, name) for key, item in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
