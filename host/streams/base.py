"""The stream store contract: persistent items, addressed by (stream, groupId, id), that browsers watch.

An item is a JSON object carrying its `id`: `set(stream, group, id, data)` stores `{**data, "id": id}`
(the `id` argument wins over an `id` inside `data`). Data that is not a JSON object is refused with
ValueError, since an item without fields cannot carry its id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from ..schema_messages import kind_of
from ..state.base import check_name, encode_value

if TYPE_CHECKING:
    from ..health import Health
    from .hub import StreamHub


def make_item(stream: Any, group_id: Any, id: Any, data: Any) -> tuple[dict[str, Any], bytes]:
    """Check the address and data; return the item and its encoding."""
    check_name("stream", stream)
    check_name("groupId", group_id)
    check_name("id", id)
    if not isinstance(data, dict):
        raise ValueError(f"stream item data must be a JSON object, got {kind_of(data)}")
    item = {**data, "id": id}
    return item, encode_value(item)


def check_address(stream: Any, group_id: Any, id: Any = "") -> None:
    check_name("stream", stream)
    check_name("groupId", group_id)
    check_name("id", id)


class StreamStore(ABC):
    # True for a store shared by several hosts (Redis): it publishes every change and `send` to the hub of
    # every host itself, once `start(hub)` has run, so the Streams facade must not publish them locally.
    fans_out = False

    async def start(self, hub: StreamHub, health: Health | None = None) -> None:
        """Begin delivering the changes made through any host to `hub` (stores that fan out), reporting
        to `health` while they cannot."""
        return None

    async def send(self, stream: str, group_id: str, id: str | None, event: dict[str, Any]) -> None:
        """An ephemeral event to every host's subscribers (stores that fan out; for the others the Streams
        facade publishes sends to this host's hub itself and never calls this)."""
        raise TypeError(f"{type(self).__name__} does not fan out: sends go to the local hub")

    @abstractmethod
    async def get(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        """The item, or None."""

    @abstractmethod
    async def set(self, stream: str, group_id: str, id: str, data: Any) -> tuple[dict[str, Any], bool]:
        """Store the item; return it and whether it was created (False: an existing item was replaced).

        Replacing an item keeps its place in the group's order.
        """

    @abstractmethod
    async def delete(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        """Remove the item and return it (None when absent)."""

    @abstractmethod
    async def get_group(self, stream: str, group_id: str) -> list[dict[str, Any]]:
        """The group's items in the order they were created."""

    @abstractmethod
    async def groups(self, stream: str) -> list[dict[str, Any]]:
        """The stream's groups holding items, as `{groupId, count}`, sorted by id (for the Workbench)."""

    @abstractmethod
    async def close(self) -> None:
        """Release the backend; the store is unusable afterwards."""
