"""What the web layer needs from the host, as Protocols: routes are built from these narrow views, never
from `Host` itself, so `host.app` → `host.web` has no way back (and tests can hand in any object that
has these parts). `Host` satisfies both structurally."""

from __future__ import annotations

from typing import Any, Protocol

from ..bus import EventBus
from ..calls import HandlerCalls
from ..cron import CronScheduler
from ..health import Health
from ..invoker import Invoker
from ..logs import LogBook
from ..project import Project
from ..queue import DeliveryWorker, Queue
from ..settings import Settings
from ..state import StateStore
from ..streams import StreamStore
from ..streams.hub import StreamHub, Streams
from ..telemetry.wiring import Telemetry


class AdminHost(Protocol):
    """The parts the admin API under /__steppe/ reads and acts on."""

    settings: Settings
    project: Project
    logs: LogBook
    calls: HandlerCalls
    bus: EventBus
    queue: Queue
    worker: DeliveryWorker
    health: Health
    state: StateStore
    steps_gone: dict[str, int]  # deliveries queued for steps the project no longer has, by step

    @property
    def serving(self) -> bool:
        """Started and not stopping (what /__steppe/ready answers)."""


class WebHost(AdminHost, Protocol):
    """Everything the ASGI app's routes need: the admin parts, plus step invocation and streams."""

    invoker: Invoker
    streams: Streams
    hub: StreamHub
    stream_store: StreamStore
    cron: CronScheduler
    telemetry: Telemetry | None

    async def authenticate(self, request: dict[str, Any]) -> Any: ...

    async def can_access(self, stream: str, subscription: dict[str, Any], auth_context: Any) -> bool: ...
