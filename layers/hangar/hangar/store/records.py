"""Typed records: what the store reads, built once from an item, so that no reader restates a default or
coerces a number again. A record is a frozen dataclass (subclass `Record`) whose `snake_case` fields are
the item's `camelCase` attributes; each table's store module defines its records (`store/runners.py`
defines `Runner`), with the defaults of attributes an item may lack.

`from_item` takes a plain item (`hangar.store.dynamo.from_item`'s), coerces each attribute to its
field's type (`int`, `str`, `tuple[str, ...]` for lists, `frozenset[str]` for string sets) and leaves out
what the record does not name; `to_item` gives the plain item back for a write, without None values and
empty sets (DynamoDB stores no empty set), so a new item has exactly the attributes it always had. A field
declared with `unwritten(default)` is an attribute an item lacks until an update first writes it (a counter
an update ADDs to, a flag set once, which conditions test with `attribute_not_exists`): it reads as its
default when absent, and `to_item` leaves it out while it holds its default."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Self

from hangar.store.dynamo import Item


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _identity(value: Any) -> Any:
    return value


def _converter(hint: Any) -> Callable[[Any], Any]:
    """How a stored value becomes the field's type (`X | None` converts like X)."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    origin = typing.get_origin(hint) or hint
    if origin in (int, str, tuple, frozenset):
        return typing.cast(Callable[[Any], Any], origin)
    return _identity


_UNWRITTEN = "hangar.store.records.unwritten"
_ALWAYS_WRITTEN = object()  # no value a field holds: `to_item` writes it whatever it is


def unwritten(default: Any) -> Any:
    """A field an item lacks until an update writes it: `default` when absent, and not in `to_item` while
    it is `default` (see the module's docstring)."""
    return dataclasses.field(default=default, metadata={_UNWRITTEN: True})


# (field, item attribute, converter, the value `to_item` leaves out) for each field of a record class.
_Layout = tuple[tuple[str, str, Callable[[Any], Any], Any], ...]
_layouts: dict[type, _Layout] = {}


def _layout(cls: type) -> _Layout:
    """The layout of the record class, worked out once."""
    layout = _layouts.get(cls)
    if layout is None:
        hints = typing.get_type_hints(cls)
        layout = tuple(
            (
                field.name,
                _camel(field.name),
                _converter(hints[field.name]),
                field.default if field.metadata.get(_UNWRITTEN) else _ALWAYS_WRITTEN,
            )
            for field in dataclasses.fields(cls)
        )
        _layouts[cls] = layout
    return layout


def _stored(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, frozenset):
        return set(value)
    return value


class Record:
    """The base of the store's records (see the module's docstring)."""

    __slots__ = ()

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        fields = {
            name: convert(item[attribute])
            for name, attribute, convert, _ in _layout(cls)
            if item.get(attribute) is not None
        }
        return cls(**fields)

    def to_item(self) -> Item:
        item = {
            attribute: _stored(value)
            for name, attribute, _, left_out in _layout(type(self))
            if (value := getattr(self, name)) != left_out
        }
        return {attribute: value for attribute, value in item.items() if value is not None and value != set()}
