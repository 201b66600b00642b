"""What the host knows is wrong right now, for `/__steppe/health` and `/__steppe/ready`.

Parts of the host (runner supervisors, the delivery worker, the stores, supervised tasks) report a
problem under a key of their own and clear it when it is gone; the probes answer the worst status with
every reason. Reasons are plain sentences: no pids, paths or payloads, since the probes are open.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "degraded", "failing"]
_RANK: dict[str, int] = {"ok": 0, "degraded": 1, "failing": 2}


@dataclass(frozen=True)
class Problem:
    status: Status
    reason: str
    since: float


class Health:
    def __init__(self) -> None:
        self._problems: dict[str, Problem] = {}

    def report(self, key: str, status: Status, reason: str) -> None:
        """Record (or update) the problem named `key`; "ok" clears it."""
        if status == "ok":
            self._problems.pop(key, None)
            return
        old = self._problems.get(key)
        since = old.since if old and old.status == status else time.time()
        self._problems[key] = Problem(status, reason, since)

    def clear(self, key: str) -> None:
        self._problems.pop(key, None)

    def clear_prefix(self, prefix: str) -> None:
        for key in [k for k in self._problems if k.startswith(prefix)]:
            del self._problems[key]

    @property
    def status(self) -> Status:
        worst: Status = "ok"
        for p in self._problems.values():
            if _RANK[p.status] > _RANK[worst]:
                worst = p.status
        return worst

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status,
                "reasons": [{"component": k, "status": p.status, "reason": p.reason, "since": round(p.since, 3)}
                            for k, p in sorted(self._problems.items())]}
