"""A Python (asyncio) client of Steppe's stream WebSocket, for services and tests.

```python
from steppe.stream_client import StreamClient

async with StreamClient("ws://127.0.0.1:3000/", auth_token="secret") as client:
    todos = await client.subscribe_group("todos", "inbox")
    todos.on_change(lambda items: print(len(items), "todos"))
    await todos.wait_synced()
    change = await todos.next_change(timeout=5)  # StreamChange(type="create", item={...}, value=[...])
```

It speaks Motia's stream wire (see docs/streams.md): `join`/`leave` out; `sync`, `create`, `update`,
`delete` and `event` envelopes in. The connection comes back by itself: after a drop it reconnects with
a doubling backoff (0.25 s up to 5 s) and re-joins every live subscription, whose next `sync` replaces
what it held. Item changes older (by the server's timestamp) than the last change applied to the same
item are dropped as stale.
"""

from .client import StreamClient
from .subscription import (
    GroupSubscription,
    ItemSubscription,
    StreamAuthError,
    StreamChange,
    StreamError,
    StreamEvent,
    Subscription,
)

__all__ = [
    "GroupSubscription",
    "ItemSubscription",
    "StreamAuthError",
    "StreamChange",
    "StreamClient",
    "StreamError",
    "StreamEvent",
    "Subscription",
]
