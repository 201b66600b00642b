"""What the Workbench shows about the past: invocations (traces) and logs, recorded off the hot path into
`.steppe/telemetry.db`, and a live feed of what happens now."""

from .live import LiveFeed
from .recorder import InvocationRecorder
from .store import TelemetryStore

__all__ = ["InvocationRecorder", "LiveFeed", "TelemetryStore"]
