"""The state store contract, and the JSON codec and argument checks every backend shares.

Values are plain JSON values and round-trip exactly: `0`, `""`, `false`, `[]` and `{}` are values, not
"missing", and a dict comes back as the dict (Motia's Python client wrapped it as `{"data": ...}`).
Both backends keep values as encoded JSON bytes so they behave alike: a caller mutating a value after
`set` cannot change what is stored, and a value that is not JSON fails in `set`, not in a later `get`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import orjson

from ..schema_messages import kind_of

# Expired entries are invisible at once; deleting them in bulk is deferred to at most once per this
# many seconds, piggybacked on store calls so that no background task has to be owned and stopped.
SWEEP_INTERVAL = 60.0


def encode_value(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise ValueError(f"value is not JSON-serialisable: {exc}") from None


def decode_value(blob: bytes) -> Any:
    return orjson.loads(blob)


def check_name(what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {kind_of(value)}")
    return value


def check_group_key(group: Any, key: Any) -> None:
    check_name("group", group)
    check_name("key", key)


def expiry(ttl: float | None, now: float) -> float | None:
    """The absolute expiry time (epoch seconds) for a ttl in seconds; None means never."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return now + float(ttl)


class StateStore(ABC):
    """Key/value state in free-form groups (often a traceId). Groups match exactly."""

    @abstractmethod
    async def get(self, group: str, key: str) -> Any | None:
        """The value, or None when absent or expired."""

    @abstractmethod
    async def set(self, group: str, key: str, value: Any, ttl: float | None = None) -> Any:
        """Store `value` (expiring after `ttl` seconds when given) and return it.

        Overwriting a live key keeps its place in the group's order; a key set again after it expired
        counts as new and goes last. Raises ValueError for a non-JSON value or a bad ttl.
        """

    @abstractmethod
    async def update(self, group: str, key: str, ops: list[dict[str, Any]], ttl: float | None = None) -> Any:
        """Apply `ops` (see state/ops.py) to the key's value atomically, store and return the new value.

        No concurrent update or set of the same key is lost. A failed `expect` raises StateConflict and
        changes nothing. Without `ttl` a live key keeps its expiry; with it the expiry is renewed.
        """

    @abstractmethod
    async def delete(self, group: str, key: str) -> Any | None:
        """Remove the key and return its value (None when it was absent or expired)."""

    @abstractmethod
    async def get_group(self, group: str) -> list[Any]:
        """The group's live values, in the order their keys were first set."""

    @abstractmethod
    async def clear(self, group: str) -> None:
        """Remove every key of the group."""

    @abstractmethod
    async def groups(self) -> list[str]:
        """Names of groups holding at least one live key, sorted (for admin and the Workbench)."""

    @abstractmethod
    async def entries(self, group: str) -> list[dict[str, Any]]:
        """The group's live keys as `{key, value, expiresAt}` (epoch seconds or None), in `get_group`'s order
        (for the Workbench)."""

    @abstractmethod
    async def close(self) -> None:
        """Release the backend; the store is unusable afterwards."""
