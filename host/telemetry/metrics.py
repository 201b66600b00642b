"""Prometheus metrics at /__steppe/metrics: requests, invocations, durations, deliveries, retries, dead
letters, the queue's depth and oldest due age, runner restarts and WebSocket clients.

The hot path only adds to plain dicts (one or two lookups per invocation, no lock, no label objects); the
metric families are built from them when Prometheus scrapes. Labels are step names, triggers, methods and
statuses: bounded by the project, never by the traffic.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # prometheus_client (~12 MB idle) is imported at the first scrape, not at start-up
    from prometheus_client.core import Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# seconds: from a fast state write to a slow LLM call
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Counts kept by the recorder's end hook, the API endpoints and the dead-letter hook; the gauges are
    read from the host's parts at scrape time (`now`, set by the metrics route)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}  # (step, method, status) → count
        self.invocations: dict[tuple[str, str, str], int] = {}  # (step, trigger, outcome) → count
        # (step, trigger) → counts per bucket (not cumulative; the last one is past the largest bound), sum
        self.durations: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        self.deliveries: dict[tuple[str, str], int] = {}  # (step, outcome) → count
        self.retries: dict[str, int] = {}  # step → deliveries run again after a failure
        self.dead: dict[str, int] = {}  # step → deliveries moved to the dead-letter store
        self.now: dict[str, Any] = {}  # the host's current figures, read just before a scrape (`_gauges`)
        self.registry: Any = None  # prometheus_client's registry, made at the first scrape (render)

    # -- counting (hot path)

    def invocation(self, step: str, trigger: str, attempt: int, error: BaseException | None,
                   seconds: float) -> None:
        outcome = "ok" if error is None else "error"
        key = (step, trigger, outcome)
        self.invocations[key] = self.invocations.get(key, 0) + 1
        hist = self.durations.get((step, trigger))
        if hist is None:
            hist = self.durations[(step, trigger)] = ([0] * (len(BUCKETS) + 1), [0.0])
        hist[0][bisect_left(BUCKETS, seconds)] += 1
        hist[1][0] += seconds
        if trigger == "event":
            dkey = (step, outcome)
            self.deliveries[dkey] = self.deliveries.get(dkey, 0) + 1
            if attempt > 1:
                self.retries[step] = self.retries.get(step, 0) + 1

    def request(self, step: str, method: str, status: int) -> None:
        key = (step, method, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1

    def dead_letter(self, step: str) -> None:
        self.dead[step] = self.dead.get(step, 0) + 1

    # -- scraping

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if self.registry is None:
            self.registry = CollectorRegistry(auto_describe=False)
            self.registry.register(self)
        return bytes(generate_latest(self.registry))

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        requests = CounterMetricFamily("steppe_requests", "HTTP requests served by API steps",
                                       labels=["step", "method", "status"])
        for (step, method, status), n in sorted(self.requests.items()):
            requests.add_metric([step, method, status], n)
        yield requests
        invocations = CounterMetricFamily("steppe_invocations", "Handler invocations, by outcome",
                                          labels=["step", "trigger", "outcome"])
        for key, n in sorted(self.invocations.items()):
            invocations.add_metric(list(key), n)
        yield invocations
        durations = HistogramMetricFamily("steppe_invocation_duration_seconds", "Handler invocation time",
                                          labels=["step", "trigger"])
        for (step, trigger), (counts, total) in sorted(self.durations.items()):
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            durations.add_metric([step, trigger], buckets, total[0])
        yield durations
        deliveries = CounterMetricFamily("steppe_deliveries", "Event deliveries run, by outcome",
                                         labels=["step", "outcome"])
        for (step, outcome), n in sorted(self.deliveries.items()):
            deliveries.add_metric([step, outcome], n)
        yield deliveries
        retries = CounterMetricFamily("steppe_delivery_retries", "Deliveries run again after a failure",
                                      labels=["step"])
        for step, n in sorted(self.retries.items()):
            retries.add_metric([step], n)
        yield retries
        dead = CounterMetricFamily("steppe_dead_letters", "Deliveries moved to the dead-letter store",
                                   labels=["step"])
        for step, n in sorted(self.dead.items()):
            dead.add_metric([step], n)
        yield dead
        yield from _gauges(self.now)


def _gauges(now: dict[str, Any]) -> Iterator[Metric]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    queue = now.get("queue") or {}
    for state, doc in (("ready", "Deliveries waiting to run (due or delayed)"),
                       ("leased", "Deliveries running now"), ("dead", "Dead letters kept")):
        if state in queue:
            yield GaugeMetricFamily(f"steppe_queue_{state}", doc, value=queue[state])
    if "oldest_due" in now:
        yield GaugeMetricFamily("steppe_queue_oldest_due_seconds",
                                "How long the oldest due delivery not yet running has waited", value=now["oldest_due"])
    runners = now.get("runners") or {}
    restarts = CounterMetricFamily("steppe_runner_restarts", "Runner processes restarted after they died or hung",
                                   labels=["language"])
    up = GaugeMetricFamily("steppe_runner_up", "1 while the language's runner is up", labels=["language"])
    for language, (count, is_up) in sorted(runners.items()):
        restarts.add_metric([language], count)
        up.add_metric([language], 1 if is_up else 0)
    yield restarts
    yield up
    if "websocket_clients" in now:
        yield GaugeMetricFamily("steppe_websocket_clients", "Stream WebSocket clients connected",
                                value=now["websocket_clients"])
    if "in_flight" in now:
        yield GaugeMetricFamily("steppe_invocations_in_flight", "Handler invocations running now",
                                value=now["in_flight"])
