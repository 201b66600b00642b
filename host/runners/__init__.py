"""Runner processes: which command runs a file (registry), one process (process), keeping it up (supervisor)."""

from .process import RunnerProcess
from .registry import RunnerRegistry, RunnerSpec
from .supervisor import InvocationContext, RunnerSupervisor, RunnerUnavailable

__all__ = ["InvocationContext", "RunnerProcess", "RunnerRegistry", "RunnerSpec", "RunnerSupervisor",
           "RunnerUnavailable"]
