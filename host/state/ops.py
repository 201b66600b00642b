"""Atomic state updates: the operations of `state.update(group, key, ops)`, applied to a JSON value.

Every store applies the same ops with this one function, inside whatever makes its read-modify-write
atomic (one synchronous call on the event loop for memory and SQLite, a transaction elsewhere), so no
update is lost when many handlers touch one key at once.

An op is a dict with `op` and, for most, an optional `path` (a dotted string or a list of keys and
list indexes) into the value; without `path` it applies to the whole value:

- `{"op": "set", "path"?, "value"}`: put `value` there.
- `{"op": "merge", "path"?, "value": {...}}`: shallow-merge an object into the object there (absent: {}).
- `{"op": "increment" | "decrement", "path"?, "by"?: number (default 1)}`: add to the number there
  (absent: 0).
- `{"op": "append", "path"?, "value"}`: add `value` to the end of the list there (absent: []).
- `{"op": "remove", "path"}`: delete the object field or list element there (absent: nothing happens);
  `{"op": "remove", "path"?, "value"}`: remove every element equal to `value` from the list there.
- `{"op": "expect", "path"?, "value"}`: compare-and-set: the update applies only if the value there
  equals `value` (`null` matching an absent value); otherwise nothing changes and StateConflict is raised.

Ops apply in order to a copy; the result is stored and returned. A missing key starts as null.
"""

from __future__ import annotations

import copy
from typing import Any

OPS = ("set", "merge", "increment", "decrement", "append", "remove", "expect")
_ABSENT = object()


class StateConflict(ValueError):
    """An `expect` op did not match: the update was not applied."""

    def __init__(self, message: str, current: Any) -> None:
        super().__init__(message)
        self.current = current


def _path(op: dict[str, Any]) -> list[str | int]:
    raw = op.get("path")
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        return [int(p) if p.lstrip("-").isdigit() else p for p in raw.split(".")]
    if isinstance(raw, list) and all(isinstance(p, str | int) and not isinstance(p, bool) for p in raw):
        return list(raw)
    raise ValueError(f"op path must be a dotted string or a list of keys and indexes, got {raw!r}")


def _get(value: Any, path: list[str | int]) -> Any:
    for part in path:
        if isinstance(value, dict) and isinstance(part, str) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value):
            value = value[part]
        else:
            return _ABSENT
    return value


def _container(root: Any, path: list[str | int]) -> Any:
    """The object or list holding the last part of `path`, creating objects along the way."""
    node = root
    for part in path[:-1]:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.setdefault(part, {})
        elif isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
            node = node[part]
        else:
            raise ValueError(f"path {path!r} does not lead into an object or list")
    return node


def _put(root: Any, path: list[str | int], value: Any) -> Any:
    if not path:
        return value
    if root is None:
        root = {}
    node, last = _container(root, path), path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and -len(node) <= last < len(node):
        node[last] = value
    else:
        raise ValueError(f"cannot set {path!r}: not an object field or an existing list index")
    return root


def _number(x: Any, what: str) -> float | int:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"{what} must be a number, got {x!r}")
    return x


def apply_ops(current: Any, ops: Any) -> Any:
    """The value after `ops`; raises ValueError for a malformed op, StateConflict for a failed expect."""
    if not isinstance(ops, list) or not ops:
        raise ValueError("ops must be a non-empty list of {op, path?, value?|by?}")
    value = copy.deepcopy(current)
    for op in ops:
        if not isinstance(op, dict) or op.get("op") not in OPS:
            raise ValueError(f"each op needs `op`, one of {', '.join(OPS)}; got {op!r}")
        kind, path = op["op"], _path(op)
        here = _get(value, path)
        if kind == "expect":
            if (None if here is _ABSENT else here) != op.get("value"):
                raise StateConflict(f"expected {op.get('value')!r} at {path or 'the value'}, found "
                                    f"{None if here is _ABSENT else here!r}", current)
        elif kind == "set":
            value = _put(value, path, copy.deepcopy(op.get("value")))
        elif kind == "merge":
            patch = op.get("value")
            base = {} if here is _ABSENT or here is None else here
            if not isinstance(patch, dict) or not isinstance(base, dict):
                raise ValueError("merge needs an object value and an object (or nothing) at its path")
            value = _put(value, path, {**base, **copy.deepcopy(patch)})
        elif kind in ("increment", "decrement"):
            by = _number(op.get("by", 1), "by")
            base = 0 if here is _ABSENT or here is None else _number(here, f"the value at {path or 'the key'}")
            value = _put(value, path, base + by if kind == "increment" else base - by)
        elif kind == "append":
            base = [] if here is _ABSENT or here is None else here
            if not isinstance(base, list):
                raise ValueError(f"append needs a list (or nothing) at {path or 'the key'}")
            value = _put(value, path, [*base, copy.deepcopy(op.get("value"))])
        elif "value" in op:  # remove matching list elements
            if isinstance(here, list):
                value = _put(value, path, [x for x in here if x != op["value"]])
        elif path and here is not _ABSENT:  # remove a field or element
            node = _container(value, path)
            del node[path[-1]]
        elif not path:
            raise ValueError("remove needs a path, or a value to take out of a list")
    return value
