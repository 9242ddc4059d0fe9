"""Frozen dataclasses of numpy arrays <-> plain data (JSON-ready dicts and lists), generated from the field types.

Used for what the driver broadcasts to executors (the screen plan): adding a field to a dataclass adds it to the
plain form, with no hand-written serialiser to keep in step. Supported field types: ``int``, ``float``, ``bool``,
``str``, ``np.ndarray`` (stored with its dtype and shape), nested dataclasses, ``X | None`` and tuples of these
(``tuple[int, ...]`` or fixed ``tuple[A, B]``).

>>> from lisearch.screening.space import Block
>>> to_plain(Block(3, 0, 10))
{'k': 3, 'start': 0, 'stop': 10}
>>> from_plain(Block, {'k': 3, 'start': 0, 'stop': 10})
Block(k=3, start=0, stop=10)
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def to_plain(value: Any) -> Any:
    """``value`` as dicts, lists and Python scalars: a dataclass becomes a dict of its fields, an array
    ``{"dtype", "shape", "data"}`` and a tuple a list."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, (tuple, list)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_plain(cls: type[T], data: dict[str, Any]) -> T:
    """The dataclass ``cls`` rebuilt from :func:`to_plain` output (arrays with their dtype and shape)."""
    hints = _hints(cls)  # type: ignore[arg-type]
    return cls(**{name: _decode(hint, data[name]) for name, hint in hints.items() if name in data})


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return {k: v for k, v in typing.get_type_hints(cls).items() if k in names}


def _decode(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _decode(next(a for a in args if a is not type(None)), value)
    if hint is np.ndarray:
        return np.asarray(value["data"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_plain(hint, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if hint in (int, float, bool, str):
        return hint(value)
    raise TypeError(f"to_plain/from_plain do not support the field type {hint!r}")
