"""Project settings: defaults, then `steppe.toml` at the project root, then STEPPE_* env vars, then CLI flags."""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


@dataclass
class Settings:
    root: Path = field(default_factory=Path.cwd)
    host: str = ""  # address to bind; empty: 127.0.0.1 under `dev`, 0.0.0.0 under `start`
    port: int = 3000
    mode: str = "dev"  # dev: pretty logs, errors show messages; start: JSON logs
    state: str = "sqlite"  # sqlite | memory
    streams: str = "sqlite"  # sqlite | memory
    bus: str = "sqlite"  # sqlite (durable, under data_dir) | memory (lost on restart; for tests)
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
    python: str = ""  # interpreter for Python steps; default: the host's own, or a project .venv
    max_body: int = 1 * MiB
    max_event: int = 1 * MiB
    max_line: int = 16 * MiB
    log_level: str = "info"
    log_format: str = ""  # pretty | json; default by mode
    auth: str = ""  # path of the stream authenticate hook file (default: conventional names)
    runners: dict[str, Any] = field(default_factory=dict)  # extra languages: {lang: {command, extensions}}
    keep_emitted: int = -1  # last emitted events kept for GET /__steppe/emitted (tests); -1: 2000 in dev, 0 in start

    @property
    def emitted_kept(self) -> int:
        return self.keep_emitted if self.keep_emitted >= 0 else 2000 if self.mode == "dev" else 0

    @property
    def data_path(self) -> Path:
        return self.root / self.data_dir

    @property
    def bind_address(self) -> str:
        return self.host or ("127.0.0.1" if self.mode == "dev" else "0.0.0.0")

    @property
    def pretty_logs(self) -> bool:
        return (self.log_format or ("pretty" if self.mode == "dev" else "json")) == "pretty"

    def python_executable(self) -> str:
        if self.python:
            return self.python
        for venv in (".venv", "venv"):
            candidate = self.root / venv / "bin" / "python"
            if candidate.exists():
                return str(candidate)
        return sys.executable


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
    values: dict[str, Any] = {}
    toml_path = root / "steppe.toml"
    if toml_path.exists():
        with toml_path.open("rb") as f:
            data = tomllib.load(f)
        values.update(data.get("steppe", data))
    defaults = Settings(root=root)
    known = {f.name for f in fields(Settings)} - {"root", "runners"}
    unknown = set(values) - known - {"runners"}
    if unknown:
        raise ValueError(f"{toml_path}: unknown settings {', '.join(sorted(unknown))}")
    for name in known:
        if (raw := env.get(f"STEPPE_{name.upper()}")) is not None:
            values[name] = _coerce(raw, getattr(defaults, name))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(root=root, **values)
