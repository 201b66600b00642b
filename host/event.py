"""An emitted event, as the bus and the queue keep it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from .schema_messages import kind_of


def new_id() -> str:
    """An event or trace id: 128 random bits as 32 hex digits (a quarter of uuid4().hex's cost; one per
    request and per emit)."""
    return os.urandom(16).hex()


new_event_id = new_id
NEW_TRACE = "new"  # InvocationContext.sampled of an invocation that starts its trace: the recorder decides at once


def emitted_fields(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """The `id` and `messageGroupId` an emit (a handler's or the admin's) gives, checked where they come in:
    the queue stores them as they are. ValueError naming the field when one is not text (a number is taken
    as text); None for each one not given."""
    out: list[str | None] = []
    for name in ("id", "messageGroupId"):
        value = event.get(name)
        if value is None or isinstance(value, str):
            out.append(value or None)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append(str(value))
        else:
            raise ValueError(f"{name} must be a string (or a number), got {kind_of(value)}")
    return out[0], out[1]


@dataclass
class Event:
    topic: str
    data: Any
    trace_id: str
    flows: list[str] = field(default_factory=list)
    message_group_id: str | None = None
    id: str = field(default_factory=new_event_id)
    emitted_by: str | None = None
    emitted_at: float = field(default_factory=time.time)
    hops: int = 0  # emits between the trace's first event and this one (the hop limit, max_hops, cuts loops)
    parent_span: str | None = None  # the OpenTelemetry span of the invocation that emitted it, when tracing is on
    # whether the Workbench records the emitting trace, as W3C's "sampled" flag: stored with the event, so
    # that a hop read back from disk or taken by another host follows its trace's decision (None: unknown)
    sampled: bool | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "topic": self.topic, "data": self.data, "traceId": self.trace_id,
             "flows": self.flows, "messageGroupId": self.message_group_id, "emittedBy": self.emitted_by,
             "emittedAt": self.emitted_at, "hops": self.hops}
        # the optional keys set in place: this runs for every durable put, where merging a dict per key cost more
        if self.parent_span:
            d["parentSpan"] = self.parent_span
        if self.sampled is not None:
            d["sampled"] = self.sampled
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(topic=d["topic"], data=d.get("data"), trace_id=d.get("traceId") or "", flows=d.get("flows") or [],
                   message_group_id=d.get("messageGroupId"), id=d.get("id") or new_event_id(),
                   emitted_by=d.get("emittedBy"), emitted_at=d.get("emittedAt") or time.time(),
                   hops=int(d.get("hops") or 0), parent_span=d.get("parentSpan") or None,
                   sampled=s if type(s := d.get("sampled")) is bool else None)
