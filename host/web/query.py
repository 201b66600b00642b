"""Query strings and form bodies as handlers get them: as Motia's Express read them (its default "extended"
parser, the qs package), so a Motia handler reading `queryParams.filter.status` or `body.items[0]` works
unchanged. A name given twice is a list; bracket names nest: `filter[status]=open` is
`{"filter": {"status": "open"}}`, `tag[]=a&tag[]=b` and `tag[0]=a&tag[1]=b` are `{"tag": ["a", "b"]}`.
As qs: five levels at most (the rest of the name is one last key, brackets kept), indexes above 20 are
object keys, and parameters past the first 1,000 are ignored."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

DEPTH = 5
ARRAY_LIMIT = 20
PARAMETER_LIMIT = 1000
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class _Items(dict[Any, Any]):
    """A level built from `[]` or `[n]` names: a list once the whole string is read (unless named keys
    joined it, which make it an object as in qs)."""


def form_params(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    nested = False
    for name, value in parse_qsl(text, keep_blank_values=True)[:PARAMETER_LIMIT]:
        path = _path(name)
        if path is None:  # a plain name, the common case
            _put(out, name, value)
        else:
            nested = True
            _assign(out, path, value)
    return _finish(out) if nested else out


def _path(name: str) -> list[str] | None:
    """The segments of a bracket name (`a[b][]` → a, b, ""), or None for a plain one."""
    start = name.find("[")
    if start <= 0 or "]" not in name[start:]:
        return None
    path, pos = [name[:start]], start
    while len(path) <= DEPTH and (m := _SEGMENT.match(name, pos)):
        path.append(m.group(1))
        pos = m.end()
    if pos < len(name):  # past the depth, or not brackets: the rest is one key, as qs keeps it
        path.append(name[pos:])
    return path


def _put(level: dict[Any, Any], key: Any, value: Any) -> None:
    """A value for `key`: a second one makes a list, as a repeated name does."""
    if key not in level:
        level[key] = value
    elif isinstance(level[key], list):
        level[key].append(value)
    else:
        level[key] = [level[key], value]


def _assign(out: dict[str, Any], path: list[str], value: str) -> None:
    level: dict[Any, Any] = out
    for i, segment in enumerate(path[:-1]):
        key = _key(level, segment) if i else segment
        child = level.get(key)
        if not isinstance(child, dict):
            made: dict[Any, Any] = _Items() if _index(path[i + 1]) is not None else {}
            if isinstance(child, list):  # values under that name already: all kept, as qs does
                child.append(made)
            elif child is not None:
                level[key] = [child, made]
            else:
                level[key] = made
            child = made
        level = child
    _put(level, _key(level, path[-1]) if len(path) > 1 else path[-1], value)


def whole_number(text: str) -> int | None:
    """`text` as a whole number when it is one in ASCII digits (str.isdigit() also takes '²', which int()
    refuses), else None; past 18 digits, 10**18 (int() refuses over 4,300 digits, SQLite over 2**63)."""
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text) if len(text) <= 18 else 10**18


def _index(segment: str) -> int | None:
    """The list position a segment names: "" appends, "0".."20" index; None for an object key."""
    if segment == "":
        return -1
    if (n := whole_number(segment)) is not None and n <= ARRAY_LIMIT and str(n) == segment:
        return n
    return None


def _key(level: dict[Any, Any], segment: str) -> Any:
    """The key of `segment` in `level`: in a list level (index, 0) for [n], so a[0][b] and a[0][c] share one
    item, and (past every index, count so far) for [], a new item each time."""
    if isinstance(level, _Items) and (index := _index(segment)) is not None:
        return (index, 0) if index >= 0 else (ARRAY_LIMIT + 1, len(level))
    return segment


def _finish(value: Any) -> Any:
    if isinstance(value, _Items):
        if all(isinstance(k, tuple) for k in value):  # only [] and [n]: a list in index order, holes closed
            return [_finish(v) for _, v in sorted(value.items(), key=lambda kv: kv[0])]
        # named keys joined it: an object, its items under their positions, as qs makes it
        return {(str(k[0] if k[0] <= ARRAY_LIMIT else k[1]) if isinstance(k, tuple) else k): _finish(v)
                for k, v in value.items()}
    if isinstance(value, dict):
        return {k: _finish(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finish(v) for v in value]
    return value
