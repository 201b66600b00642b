"""Project settings: defaults, then `steppe.toml` at the project root, then STEPPE_* env vars, then CLI flags."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .settings_check import check_settings

MiB = 1024 * 1024
PROJECT_VENVS = ("python_modules", ".venv", "venv")  # searched in this order for the Python runner


@dataclass
class Settings:
    root: Path = field(default_factory=Path.cwd)
    host: str = ""  # address to bind; empty: 127.0.0.1 (both modes); "0.0.0.0" serves on every interface
    port: int = 3000
    mode: str = "dev"  # dev: pretty logs, errors show messages; start: JSON logs
    state: str = "sqlite"  # sqlite | memory | redis
    streams: str = "sqlite"  # sqlite | memory | redis
    bus: str = "sqlite"  # sqlite (durable, under data_dir) | memory (lost on restart; for tests) | redis
    retry_base: float = 1.0  # seconds: retry n waits a random time in [0, min(retry_cap, retry_base * 2^(n-1))]
    retry_cap: float = 30.0
    step_concurrency: int = 50  # in-flight deliveries per event step without queue.concurrency
    runner_concurrency: int = 200  # in-flight deliveries per runner, across its steps
    dedupe_window: float = 86400.0  # seconds an emit id is remembered (emit({id}) is ignored when seen)
    drain_grace: float = 10.0  # seconds in-flight work may finish after SIGTERM
    ping_interval: float = 5.0  # seconds between pings to each runner
    ping_timeout: float = 10.0  # a runner that does not answer a ping within this is killed and restarted
    cancel_grace: float = 2.0  # seconds a runner has to honour a cancel before it is killed and restarted
    data_dir: str = ".steppe"
    storage_check_interval: float = 2.0  # seconds between checks that the database files are still the ones opened
    backlog_age_warn: float = 60.0  # health says degraded once the oldest due delivery has waited this long (s)
    api_timeout: float = 30.0  # seconds an API handler may run before 504
    event_timeout: float = 300.0  # default for event/cron handlers without infrastructure.handler.timeout
    python: str = ""  # interpreter for Python steps; default: python_modules/, .venv/, venv/, else the host's own
    max_body: int = 1 * MiB
    max_event: int = 1 * MiB
    max_line: int = 16 * MiB
    max_headers: int = 64 * 1024  # bytes of request headers in all; 431 above
    header_timeout: float = 10.0  # seconds a client has to send a request's head (from connecting); 408 after
    body_timeout: float = 60.0  # seconds a client has to send a request's body, once its head is in; 408 after
    restart_cap: float = 30.0  # seconds: the longest wait between two restarts of a crash-looping runner
    log_level: str = "info"
    log_format: str = ""  # pretty | json; default by mode
    auth: str = ""  # path of the stream authenticate hook file (default: conventional names)
    workbench: bool = True  # serve the Workbench at /__steppe/ui/ and its API at /__steppe/api/
    telemetry: bool = True  # record invocations and logs into <data_dir>/telemetry.db (the Workbench's traces)
    telemetry_days: float = 7.0  # telemetry older than this many days is deleted
    telemetry_mb: float = 200.0  # past this many MB of telemetry, the oldest records are deleted
    telemetry_rate: float = 200.0  # new traces a second recorded in full; past it, a sample (failures always); 0: all
    telemetry_per_trace: int = 1000  # invocations recorded per trace; past it failures only, the rest counted; 0: all
    metrics: bool = True  # Prometheus metrics at /__steppe/metrics (docs/observability.md)
    otel_endpoint: str = ""  # OTLP/HTTP collector base URL for traces; empty: the OTEL_EXPORTER_OTLP_* env, or off
    otel_service_name: str = ""  # service.name of the exported spans; empty: OTEL_SERVICE_NAME, else the project folder
    runners: dict[str, Any] = field(default_factory=dict)  # extra languages: {lang: {command, extensions}}
    # ([runners.node] / [runners.python] without a command: options of the built-in runner, e.g. preload)
    # triggers of step files with no config (the one-argument dialect): {"<file>": {path|subscribes|cron...}}
    steps: dict[str, Any] = field(default_factory=dict)
    max_hops: int = 25  # an event this many emits deep in one trace goes to the dead-letter store (LoopDetected)
    # streams handlers may write without a stream file (the dialect's event.stream(name, data)); no schema
    open_streams: list[str] = field(default_factory=list)
    admin_token: str = ""  # the admin API under /__steppe/ needs it; without it: off in start, loopback-only dev
    allowed_hosts: list[str] = field(default_factory=list)  # Host names /__steppe/ answers (+ loopback names)
    max_json_depth: int = 512  # nesting levels of a JSON body (API steps, admin); 400 above
    # Many hosts as one app (docs/scaling.md): `backend` is the default of `state`, `streams` and `bus`
    # when they are not set themselves; "redis" also makes cron ticks run once across the hosts.
    backend: str = ""  # "" (each part's own default) | sqlite | memory | redis
    redis_url: str = "redis://127.0.0.1:6379/0"  # the Redis every host of the app shares
    redis_prefix: str = "steppe:"  # start of every key, so several apps can share one Redis
    redis_lease: float = 30.0  # seconds a dead host's running deliveries stay leased before others take them
    # log fields whose key contains one of these words (case and -/_ ignored) are logged as [REDACTED],
    # on top of authorization / cookie headers, which always are (host/redact.py)
    redact_keys: str = "password,passwd,secret,token,api_key,apikey,access_key,private_key"
    ws_max_queue_bytes: int = 8 * MiB  # JSON text waiting for one stream socket; past it the socket is dropped
    # permessage-deflate on stream sockets: smaller frames, but ~300 KB of zlib state per open socket
    ws_compression: bool = False
    keep_emitted: int = -1  # last emitted events kept for GET /__steppe/emitted (tests); -1: 2000 in dev, 0 in start

    @property
    def emitted_kept(self) -> int:
        return self.keep_emitted if self.keep_emitted >= 0 else 2000 if self.mode == "dev" else 0

    @property
    def data_path(self) -> Path:
        return self.root / self.data_dir

    @property
    def uses_redis(self) -> bool:
        return "redis" in (self.state, self.streams, self.bus) or self.backend == "redis"

    @property
    def bind_address(self) -> str:
        return self.host or "127.0.0.1"

    @property
    def pretty_logs(self) -> bool:
        return (self.log_format or ("pretty" if self.mode == "dev" else "json")) == "pretty"

    def python_executable(self) -> str:
        return self.python_choice()[0]

    def python_choice(self) -> tuple[str, str]:
        """(interpreter, why it was chosen). An explicit `python` (steppe.toml or STEPPE_PYTHON) wins; then
        the project's own virtualenv: python_modules/ (Motia's), .venv/, venv/; then the host's Python."""
        if self.python:
            return self.python, "the python setting"
        for venv in PROJECT_VENVS:
            candidate = self.root / venv / "bin" / "python"
            if candidate.exists():
                return str(candidate), f"the project's {venv}/"
        return sys.executable, "the host's own Python"


def _coerce(value: str, like: Any) -> Any:
    if isinstance(like, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    return value


def load_settings(root: Path, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    env = dict(os.environ if env is None else env)
    root = root.resolve()
    if not root.is_dir():  # a mistyped --root would otherwise run an empty project, and make its data folder
        raise ValueError(f"the project folder {root} does not exist" if not root.exists()
                         else f"the project folder {root} is not a folder")
    values: dict[str, Any] = {}
    toml_path = root / "steppe.toml"
    if toml_path.exists():
        import tomllib  # here: a project without steppe.toml starts without it

        with toml_path.open("rb") as f:
            data = tomllib.load(f)
        values.update(data.get("steppe", data))
    defaults = Settings(root=root)
    known = {f.name for f in fields(Settings)} - {"root", "runners", "steps", "open_streams"}
    unknown = set(values) - known - {"runners", "steps", "open_streams"}
    lists = {"allowed_hosts"}
    if unknown:
        raise ValueError(f"{toml_path}: unknown settings {', '.join(sorted(unknown))}")
    sources = dict.fromkeys(values, "steppe.toml")
    for name in known:
        if (raw := env.get(f"STEPPE_{name.upper()}")) is not None:
            sources[name] = f"STEPPE_{name.upper()}"
            try:
                values[name] = ([h.strip() for h in raw.split(",") if h.strip()] if name in lists
                                else _coerce(raw, getattr(defaults, name)))
            except ValueError:
                kind = "a whole number" if isinstance(getattr(defaults, name), int) else "a number"
                raise ValueError(f"{name} (STEPPE_{name.upper()}) must be {kind}, got {raw!r}") from None
    given = {k: v for k, v in overrides.items() if v is not None}
    sources.update(dict.fromkeys(given, "the command line"))
    values.update(given)
    if backend := values.get("backend"):
        for name in ("state", "streams", "bus"):
            if name not in values:
                values[name], sources[name] = backend, f"backend, {sources['backend']}"
    settings = Settings(root=root, **values)
    check_settings(settings, lambda name: sources.get(name, "default"))
    return settings
