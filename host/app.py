"""The host: wires the project, runners, bus, stores, HTTP and cron together, and starts and stops them."""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .bus import EventBus
from .calls import HandlerCalls
from .cron import CronScheduler
from .early_start import EarlyStart, build_project, prepare_logs
from .health import Health
from .invoker import Invoker
from .logs import LogBook
from .motia_config import check_auth_context
from .project import Project, ProjectError
from .queue import DeliveryWorker, Subscription, open_queue, with_retries
from .runners.limits import check_line_limits
from .settings import Settings
from .state import open_state_store
from .storage_watch import StorageWatch
from .streams import open_stream_store
from .streams.hub import StreamHub, Streams
from .streams.ws import StreamSocketLimits
from .tasks import TaskSupervisor
from .telemetry.wiring import Telemetry, observe
from .waiting import describe, steps_gone

if TYPE_CHECKING:
    from .redis_conn import RedisConn
    from .reload import DevReloader
    from .web.front import FrontDoor


def _import_web(warm: tuple[str, ...] = ()) -> ModuleType:
    """The HTTP layer's routes and front door (FastAPI is left to the first request that needs the full app,
    host/web/front.py), and the caller's `warm` modules (its HTTP server). start() imports them in a thread
    while the runners start, so they are off the path to the first answer; one thread, so no two threads
    import the same modules at once."""
    for name in warm:
        importlib.import_module(name)
    return importlib.import_module(".web.routes", __package__)


def _open_redis(settings: Settings) -> RedisConn | None:
    """The shared Redis pool, when any part uses Redis; redis-py (and the OpenTelemetry it pulls in) is imported
    only then: a tenth of a second of every start otherwise."""
    if not settings.uses_redis:
        return None
    from .redis_conn import open_redis

    return open_redis(settings)


def _cron_lock(redis: RedisConn) -> Any:
    from .cron_lock import RedisCronLock

    return RedisCronLock(redis)


class Host:
    def __init__(self, settings: Settings, logs: LogBook | None = None, early: EarlyStart | None = None) -> None:
        """`early`: the project already loading, with its log book and health (`steppe start`, serve.py)."""
        if early is None:
            check_line_limits(settings)  # refuse to start when a request could outgrow a protocol line
        self.settings = settings
        # what is wrong right now: every part reports here, the probes read it
        self.health = early.health if early else Health()
        self.logs = early.logs if early else logs or LogBook(pretty=settings.pretty_logs, level=settings.log_level)
        if early is None:
            prepare_logs(settings, self.logs)
        settings.data_path.mkdir(parents=True, exist_ok=True)
        self.redis = _open_redis(settings)  # the pool the Redis backends share, when any part uses Redis
        self.queue = open_queue(settings.bus, settings.data_path, self.redis, settings.redis_lease)
        self.bus = EventBus(self.queue, settings.dedupe_window)
        self.state = open_state_store(settings.state, settings.data_path, self.redis)  # type: ignore[arg-type]
        self.hub = StreamHub()
        self.hub.socket_limits = StreamSocketLimits(send_queue_bytes=settings.ws_max_queue_bytes)
        self.stream_store = open_stream_store(settings.streams, settings.data_path, self.redis)  # type: ignore[arg-type]
        self.streams = Streams(self.stream_store, self.hub,
                               lambda: set(self.project.streams) | set(settings.open_streams))
        self.calls = HandlerCalls(self.bus, self.state, self.streams, self.logs, settings.max_event)
        self.calls.emitted.resize(settings.emitted_kept)
        if early is not None:
            self.project: Project = early.project
        else:
            self.project = build_project(settings, self.logs, self.health, self.calls)
        self._loading = early.loading if early else None  # the project's load, when it began before the Host
        self.invoker = Invoker(self.project, self.logs, settings.event_timeout, settings.max_hops)
        self.telemetry = Telemetry.attach(self)  # the Workbench's traces and persisted logs
        self.metrics, self.tracing = observe(self)  # Prometheus counts and OpenTelemetry spans (docs/observability.md)
        self.worker = DeliveryWorker(self.queue, runner_concurrency=settings.runner_concurrency)
        self.worker.handle = with_retries(self.invoker.deliver, self.queue, base=settings.retry_base,
                                          cap=settings.retry_cap, wake=self.worker.wake, on_dead=self._dead_letter)
        self.bus.on_accepted = self.worker.wake
        self.tasks = TaskSupervisor(self.health)  # the worker, cron schedules and storage watch restart on a crash
        # with Redis, other hosts may run the same project: each cron tick runs on the host winning its lock
        self.cron = CronScheduler(self.invoker.tick, self.logs, spawn=self.tasks.supervise,
                                  lock=_cron_lock(self.redis) if self.redis else None)
        files = [f for f in (getattr(s, "file", None) for s in (self.queue, self.state, self.stream_store)) if f]
        self.storage_watch = StorageWatch(self.health, self.queue, files, lambda: list(self.worker.policies),
                                          interval=settings.storage_check_interval,
                                          backlog_age_warn=settings.backlog_age_warn)
        self._watch_task: asyncio.Task[None] | None = None
        self.steps_gone: dict[str, int] = {}  # deliveries queued for steps the project no longer has (waiting.py)
        self._gone_check: asyncio.Task[None] | None = None
        self.app: FrontDoor | None = None
        self.serving = False  # started and not stopping: what /__steppe/ready answers
        self.reloader: DevReloader | None = None
        if early is not None:
            early.attach(self.calls)  # last: its held log records go to the telemetry sink too

    async def load(self) -> None:
        """Load every file (raises ProjectError when the project cannot start)."""
        if self._loading is not None:
            await self._loading
        else:
            await self.project.load()

    async def start(self, warm: tuple[str, ...] = ()) -> FrontDoor:
        if self.redis is not None:
            self.redis.health = self.health
            try:
                await self.redis.check()
            except RuntimeError as e:
                raise ProjectError(str(e)) from None
        web = asyncio.ensure_future(asyncio.to_thread(_import_web, warm))  # beside the runners starting
        try:
            await self.load()
        finally:
            web_layer = await web  # also when loading failed: no thread left importing at stop
        await self.stream_store.start(self.hub, self.health)
        await self.queue.watch(self.worker.wake)  # deliveries made due by other hosts
        if recovered := await self.queue.recover():
            self.logs.write("info", f"{recovered} delivery(ies) interrupted by the last stop will run again")
        self.app = web_layer.front_door(self)
        self.refresh()
        self.worker.start(self.tasks.spawner("delivery worker"))
        self._watch_task = self.tasks.supervise("storage watch", self.storage_watch.run)
        self.serving = True
        if self.settings.mode == "dev":
            from .reload import DevReloader  # watchfiles and the type generators: dev mode only

            self.reloader = DevReloader(self)
            self.reloader.start()
        if "python" in self.project.supervisors:
            python, why = self.settings.python_choice()
            self.logs.write("info", f"python steps run with {python} ({why})")
        ok = len(self.project.ok_steps())
        bad = len(self.project.steps) - ok
        self.logs.write("info", f"{ok} step(s) ready" + (f", {bad} not loaded (see `steppe list`)" if bad else "")
                        + f"; runners: {', '.join(sorted(self.project.supervisors)) or 'none'}")
        return self.app

    def refresh(self) -> None:
        """Apply the project's steps to routes, subscriptions, delivery policies and cron schedules (at
        start, and after a dev reload)."""
        policies = {s.name: self.invoker.policy(s, self.settings.step_concurrency)
                    for s in self.project.ok_steps("event")}
        self.bus.set_routes({topic: [Subscription(name, policies[name].delay, policies[name].fifo) for name in names]
                             for topic, names in self.project.topic_routes().items()})
        self.worker.set_policies(policies)
        self.queue.set_limits({name: p.concurrency for name, p in policies.items()})
        self.cron.sync(self.project.ok_steps("cron"))
        if self.app is not None:
            self.app.routes[:] = _import_web().build_routes(self)
        self._gone_check = asyncio.get_running_loop().create_task(self._check_steps_gone())

    async def _check_steps_gone(self) -> None:
        steps = list(self.project.steps.values())
        self.steps_gone = await steps_gone(self.queue, (s.name for s in steps))
        if self.steps_gone:
            unnamed = sum(1 for s in steps if not s.config.get("name"))
            self.logs.write("warn", describe(self.steps_gone, unnamed))

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking work, let in-flight deliveries finish within the grace period (the rest stay in the
        journal for the next start), then stop the runners and close the stores."""
        grace = self.settings.drain_grace if grace is None else grace
        self.serving = False
        if self.reloader:
            await self.reloader.stop()
        await self.cron.stop()
        if self._watch_task:
            self._watch_task.cancel()
        if self._gone_check:
            self._gone_check.cancel()
        self.tasks.close()
        if self._loading is not None:  # stopped before the load that began early ended: no runner half-spawned
            await asyncio.gather(self._loading, return_exceptions=True)
        left = await self.worker.stop(grace)
        if left:
            self.logs.write("warn", f"{left} delivery(ies) still running after {grace}s; they will run again "
                            "after the next start")
        await self.project.stop(5.0)
        await self.queue.close()
        await self.state.close()
        await self.stream_store.close()
        if self.telemetry:
            await self.telemetry.stop()
        if self.tracing:
            await asyncio.to_thread(self.tracing.shutdown)  # the spans still buffered go to the collector
        if self.redis is not None:
            await self.redis.close()

    def _dead_letter(self, delivery: Any, error: str) -> None:
        if self.metrics:
            self.metrics.dead_letter(delivery.step)
        self.logs.write("error", f"delivery {delivery.id} of event {delivery.event.topic!r} moved to the "
                        f"dead-letter store after {delivery.attempts} attempt(s): {error}; see "
                        f"`steppe dlq show {delivery.id}`", step=delivery.step,
                        trace_id=delivery.event.trace_id, flows=delivery.event.flows)

    async def authenticate(self, request: dict[str, Any]) -> Any:
        auth = self.project.auth
        assert auth
        context = await self.invoker.run_hook(auth.language, auth.path, "authenticate", "authenticate", request)
        motia = self.project.motia_config
        if context is not None and motia and motia.path == auth.path and motia.context_schema:
            check_auth_context(context, motia.context_schema)  # streamAuth.contextSchema: a wrong shape refuses
        return context

    async def can_access(self, stream: str, subscription: dict[str, Any], auth_context: Any) -> bool:
        definition = self.project.streams.get(stream)
        if definition is None or not definition.can_access:
            return True
        allowed = await self.invoker.run_hook(definition.language, definition.path, stream, "canAccess",
                                              {"subscription": subscription, "authContext": auth_context})
        return bool(allowed)
