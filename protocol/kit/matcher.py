"""Placeholders and matchers of the vectors.

A one-key object whose key starts with `$` is special. In what the kit sends, `$fixture`, `$id`, `$lang` and
`$root` are replaced by values of the run. In expectations they compare equal to those values, and these
match volatile parts:
  {"$type": "int"|"number"|"string"|"bool"|"object"|"array"|"null"}   {"$regex": "re.search pattern"}
  {"$any": true} present, any value        {"$absent": true} the key must be missing
  {"$oneOf": [m1, m2]} any of them         {"$exact": {...}} no keys beyond the listed ones (deep)
  {"$stack": true | "<fixture>"} a string free of the runner's own frames (naming the fixture's file)
Objects match when every listed key matches (extra keys allowed unless under `$exact`); lists match
element-wise with the same length; scalars by equality (true is not 1).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .loader import Fixtures

_TYPES: dict[str, Any] = {"int": int, "number": (int, float), "string": str, "bool": bool, "object": dict,
                          "array": list, "null": type(None)}


class Scope:
    """What placeholders refer to during one vector run."""

    def __init__(self, lang: str, fixtures: Fixtures, markers: list[str]) -> None:
        self.lang, self.fixtures, self.markers = lang, fixtures, markers
        self.ids: dict[str, Any] = {}

    def value(self, key: str, arg: Any) -> Any:
        if key == "$fixture":
            return self.fixtures[arg].path
        if key == "$id":
            return self.ids[arg]
        if key == "$lang":
            return self.lang
        if key == "$root":
            return str(self.fixtures.root)
        raise KeyError(key)


def special(value: Any) -> tuple[str, Any] | None:
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key.startswith("$"):
            return key, value[key]
    return None


def fill(value: Any, scope: Scope) -> Any:
    """`value` with its placeholders replaced, ready to send."""
    if op := special(value):
        return scope.value(*op)
    if isinstance(value, dict):
        return {k: fill(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, scope) for v in value]
    return value


def short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= limit else text[:limit] + "…"


def _may_be_absent(expected: Any) -> bool:
    op = special(expected)
    return op is not None and (op[0] == "$absent" or (op[0] == "$oneOf" and any(map(_may_be_absent, op[1]))))


def match(expected: Any, actual: Any, scope: Scope, where: str = "value", exact: bool = False) -> list[str]:
    """Every way `actual` differs from `expected`, as readable lines (empty when it matches)."""
    if op := special(expected):
        return _match_op(op[0], op[1], actual, scope, where, exact)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {short(actual)}"]
        missing = [key for key, sub in expected.items() if key not in actual and not _may_be_absent(sub)]
        problems = [f"{where}: missing {', '.join(missing)}"] if missing else []
        for key, sub in expected.items():
            if key in actual:
                problems += match(sub, actual[key], scope, f"{where}.{key}", exact)
        if exact and (extra := sorted(set(actual) - set(expected))):
            problems.append(f"{where}: unexpected keys {extra}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {short(expected)}, got {short(actual)}"]
        return [p for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for p in match(e, a, scope, f"{where}[{i}]", exact)]
    if expected == actual and isinstance(expected, bool) == isinstance(actual, bool):
        return []
    return [f"{where}: expected {short(expected)}, got {short(actual)}"]


def _match_op(key: str, arg: Any, actual: Any, scope: Scope, where: str, exact: bool) -> list[str]:
    if key == "$exact":
        return match(arg, actual, scope, where, exact=True)
    if key == "$any":
        return []
    if key == "$absent":
        return [f"{where}: expected no such key, got {short(actual)}"]
    if key == "$oneOf":
        tries = [match(m, actual, scope, where, exact) for m in arg]
        return [] if any(not t for t in tries) else [f"{where}: none of {short(arg)} matches {short(actual)}"]
    if key == "$type":
        ok = isinstance(actual, _TYPES[arg]) and (arg == "bool" or not isinstance(actual, bool))
        return [] if ok else [f"{where}: expected a {arg}, got {short(actual)}"]
    if key == "$regex":
        if isinstance(actual, str) and re.search(arg, actual):
            return []
        return [f"{where}: expected text matching /{arg}/, got {short(actual)}"]
    if key == "$stack":
        return _match_stack(arg, actual, scope, where)
    return match(scope.value(key, arg), actual, scope, where, exact)


def _match_stack(fixture: Any, actual: Any, scope: Scope, where: str) -> list[str]:
    if not isinstance(actual, str):
        return [f"{where}: expected a stack string, got {short(actual)}"]
    # a line under the runner's folder is a runner frame, unless it is under the fixture folder too (a
    # runner kept beside its fixtures)
    fixture_root = str(scope.fixtures.root).rstrip(os.sep) + os.sep
    lines = [line for line in actual.splitlines() if fixture_root not in line]
    problems = [f"{where}: has runner frames ({m}): {short(actual, 400)}" for m in scope.markers
                if any(m in line for line in lines)]
    if isinstance(fixture, str):
        name = os.path.basename(scope.fixtures[fixture].path)
        if name not in actual:
            problems.append(f"{where}: does not name the handler's file {name}: {short(actual, 400)}")
    return problems
