"""Connecting the telemetry to the host's parts: the log book's sink, the invoker's recorder, the host
calls' observer. Each part only learns of one callable; none of them imports this package."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from ..db import StorageError
from .live import LiveFeed
from .metrics import Metrics
from .recorder import InvocationRecorder
from .store import TelemetryStore
from .tracing import Tracing


class Telemetry:
    def __init__(self, settings: Any, health: Any) -> None:
        self.feed = LiveFeed()
        self.store = TelemetryStore(settings.data_path / "telemetry.db", max_age=settings.telemetry_days * 86400,
                                    max_bytes=int(settings.telemetry_mb * 1024 * 1024),
                                    on_problem=lambda status, reason: health.report("telemetry", status, reason))
        self.recorder = InvocationRecorder(self.on_invocation, self.feed.publish, settings.telemetry_rate,
                                           settings.telemetry_per_trace, self.store.add_unrecorded)
        self.started_at = time.time()
        self._started = False

    @classmethod
    def attach(cls, host: Any) -> Telemetry | None:
        """Record the host's invocations and logs (unless `telemetry = false` in the settings)."""
        if not host.settings.telemetry:
            return None
        try:
            t = cls(host.settings, host.health)
        except (sqlite3.Error, StorageError) as e:
            # the Workbench's records are not worth the host: serve without them and say why (a database
            # locked by another host on this project, a damaged file); a restart tries again
            reason = f"telemetry.db could not be opened, so the Workbench records no traces or logs: {e}"
            host.health.report("telemetry", "degraded", reason)
            host.logs.write("warning", reason)
            return None
        host.logs.sinks.append(t.on_log)
        host.invoker.recorder = t.recorder
        host.calls.observe = t.recorder.operation
        return t

    def on_log(self, record: dict[str, Any]) -> None:
        if not self._started:
            self._start()
        self.store.add_log(record)
        self.feed.publish("log", record)

    def on_invocation(self, inv: Any) -> None:
        if not self._started:
            self._start()
        self.store.add_invocation(inv)

    def _start(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not yet serving: the first record written under the loop starts the writer
        self._started = True
        self.store.start()

    async def stop(self) -> None:
        await self.store.stop()


def observe(host: Any) -> tuple[Metrics | None, Tracing | None]:
    """Prometheus counts (unless `metrics = false`) and OpenTelemetry spans (when a collector is configured),
    both fed by the invocation recorder's begin and end: no second path through the invoker. Without the
    Workbench's telemetry the recorder still runs, recording nothing itself."""
    metrics = Metrics() if host.settings.metrics else None
    tracing = Tracing.from_settings(host.settings, lambda status, reason: host.health.report("tracing", status, reason))
    if metrics is None and tracing is None:
        return None, None
    recorder = host.invoker.recorder
    if recorder is None:
        recorder = host.invoker.recorder = InvocationRecorder(lambda row: None, lambda kind, data: None)
        recorder.recording = False
    recorder.metrics, recorder.tracing = metrics, tracing
    return metrics, tracing
