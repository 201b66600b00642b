"""A loaded project: its files, the runners that loaded them, and the steps and streams they define."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import wire
from .dialect import complete_config, unmatched
from .discovery import SourceFile, classify, discover, find_auth_file
from .health import Health
from .motia_config import MotiaConfig, find_motia_config
from .rpc import ConnectionLost, RpcError
from .runners import RunnerRegistry, RunnerSupervisor, RunnerUnavailable
from .runners.supervisor import HostCall, RunnerLog
from .schema_messages import kind_of
from .steps import ConfigError, Step, validate_config


class ProjectError(Exception):
    """The project cannot start as it is (two steps with one name or one route, an auth hook that does not
    load)."""


@dataclass
class StreamDef:
    name: str
    path: Path
    language: str
    config: dict[str, Any]
    can_access: bool


@dataclass
class AuthHook:
    path: Path
    language: str


class Project:
    def __init__(self, root: Path, registry: RunnerRegistry, *, host_call: HostCall, on_log: RunnerLog,
                 on_event: Callable[[str, str], None], auth_file: str = "",
                 runner_options: dict[str, float] | None = None,
                 declarations: dict[str, Any] | None = None, health: Health | None = None) -> None:
        self.root, self.registry = root, registry
        self._declarations = declarations or {}  # steppe.toml [steps."<file>"]: triggers of config-less files
        self._host_call, self._on_log, self._on_event = host_call, on_log, on_event
        self._auth_file, self._runner_options = auth_file, runner_options or {}
        self._health = health
        self.steps: dict[str, Step] = {}  # by path
        self._named: dict[str, tuple[str, Step]] = {}  # step_named's answers: name -> (key in steps, step)
        self.streams: dict[str, StreamDef] = {}
        self.stream_errors: dict[str, str] = {}  # path → load error
        self.auth: AuthHook | None = None
        self.motia_config: MotiaConfig | None = None  # a Motia project's motia.config.ts (plugins, routes, auth)
        self._stream_auth_path: Path | None = None  # the file whose authenticate hook guards stream sockets
        self._motia_files: set[str] = set()  # plugin step files that motia.config named
        self.supervisors: dict[str, RunnerSupervisor] = {}

    async def load(self) -> None:
        extra = self.registry.extra_extensions()
        files = discover(self.root, extra)
        auth_path = find_auth_file(self.root, self._auth_file or None, extra)
        if auth_path:
            if not auth_path.is_file():
                raise ProjectError(f"the auth hook {self._rel(auth_path)} does not exist")
            if self.registry.language_of(auth_path) is None:
                raise ProjectError(f"the auth hook {self._rel(auth_path)} cannot be loaded: no runner handles "
                                   f"{auth_path.suffix} files")
            files.append(SourceFile(auth_path, "auth"))
        # motia.config is loaded like an auth file: its streamAuth serves when no Steppe auth file exists
        if (motia_path := find_motia_config(self.root)) and motia_path != auth_path:
            files.append(SourceFile(motia_path, "auth"))
        self._stream_auth_path = auth_path or motia_path
        by_language: dict[str, list[SourceFile]] = {}
        for f in files:
            language = self.registry.language_of(f.path)  # each runner's probe runs as it starts, side by side
            if language is None:
                self.steps[str(f.path)] = Step(f.path, "?", error=f"no runner handles {f.path.suffix} files")
                continue
            by_language.setdefault(language, []).append(f)
        await asyncio.gather(*(self._load_language(lang, fs) for lang, fs in by_language.items()))
        if auth_path and (self.auth is None or str(auth_path) in self.stream_errors):
            # a Steppe auth hook that does not load stops the start (a motia.config that does not load
            # only fails closed: its sockets get 401, its steps still serve)
            why = self.stream_errors.get(str(auth_path), "it did not load")
            raise ProjectError(f"the auth hook {self._rel(auth_path)} cannot be loaded: {why}")
        if self.motia_config:
            await self._load_motia_extras(self.motia_config)
        if stray := unmatched(self._declarations, [f.path for f in files if f.kind == "step"], self.root):
            self._on_event("warn", f"steppe.toml declares [steps.\"...\"] for no step file: {', '.join(stray)}")
        self._check_unique()

    async def _load_motia_extras(self, motia: MotiaConfig) -> None:
        """motia.config's registerApi routes and its local plugins' step files."""
        for warning in motia.warnings:
            self._on_event("warn", f"motia.config: {warning}")
        for step in motia.route_steps():
            self.steps[str(step.path)] = step
        by_language: dict[str, list[SourceFile]] = {}
        for f in motia.plugin_files(set(self.steps)):
            if (language := self.registry.language_of(f.path)) is not None:
                by_language.setdefault(language, []).append(f)
                self._motia_files.add(str(f.path))
        for language, files in by_language.items():
            if (sup := self.supervisors.get(language)) is None:
                await self._load_language(language, files)
            else:
                await self._load_files(sup, files)

    async def _load_language(self, language: str, files: list[SourceFile]) -> None:
        spec = await self.registry.resolve(language)
        sup = RunnerSupervisor(spec, self.root, host_call=self._host_call, on_log=self._on_log,
                               on_event=self._on_event, on_unhealthy=self._runner_unhealthy,
                               health=self._health, **self._runner_options)  # type: ignore[arg-type]
        try:
            await sup.start()
        except RunnerUnavailable as e:
            for f in files:
                if f.kind == "step":
                    self.steps[str(f.path)] = Step(f.path, language, unavailable=str(e))
                else:
                    self.stream_errors[str(f.path)] = str(e)
            self._on_event("warn", f"{len(files)} {language} file(s) unavailable: {e}")
            if self._health is not None:
                self._health.report(sup.health_key, "degraded", f"the {language} runner could not start, so "
                                    f"{len(files)} file(s) are unavailable (see `steppe list`)")
            return
        self.supervisors[language] = sup
        await self._load_files(sup, files)

    async def _load_files(self, sup: RunnerSupervisor, files: list[SourceFile]) -> None:
        """Load files side by side. A runner loads them in the order sent, so when it dies under them (a top
        level that runs forever answers no ping, or one that crashes it) the first of those lost is the one
        it was running: it is reported; the others never ran, and are loaded again one at a time once the
        runner is back (before, every file queued behind it was reported broken until edited)."""
        process = sup.process
        outcomes = await asyncio.gather(*(self._load_file(sup, f, lost_ok=True) for f in files))
        lost = [f for f, died in zip(files, outcomes, strict=True) if died]
        if lost:
            self._load_failed(sup, lost[0], "its runner died while loading it (does its top level run forever, "
                              f"or crash the {sup.language} process?); it was restarted without the file")
        if len(lost) > 1:
            with contextlib.suppress(RunnerUnavailable):  # then each load below says so
                await sup.replaced(process)
        for f in lost[1:]:
            await self._load_file(sup, f)

    async def _load_file(self, sup: RunnerSupervisor, f: SourceFile, lost_ok: bool = False) -> bool:
        """Load one file and record its step, stream or hook, or why it failed. With `lost_ok`, a load cut off
        by the runner's death is neither recorded nor reported: True, and the caller decides."""
        try:
            result = await sup.load(str(f.path), f.kind)
        except (TimeoutError, RpcError, RunnerUnavailable) as e:
            if lost_ok and isinstance(e, ConnectionLost):
                return True
            self._load_failed(sup, f, _describe_load_error(e))
            return False
        if not isinstance(result, dict) or not isinstance(result.get("config") or {}, dict):
            # a runner whose step file broke its encoder (JS: Object.prototype.toJSON replaced) answers anything
            self._load_failed(sup, f, f"the {sup.language} runner answered the load with {kind_of(result)}, not "
                              "{config, handler}: does the file replace something its runner uses (a global, "
                              "JSON, toJSON)?")
            return False
        self._loaded(sup, f, result)
        return False

    def _load_failed(self, sup: RunnerSupervisor, f: SourceFile, reason: str) -> None:
        self._on_event("error", f"failed to load {self._rel(f.path)}: {reason}")
        if f.kind == "step":
            self.steps[str(f.path)] = Step(f.path, sup.language, error=reason)
        else:
            self.stream_errors[str(f.path)] = reason
        if f.kind == "auth" and f.path == self._stream_auth_path:
            self.auth = AuthHook(f.path, sup.language)  # fail closed: sockets get 401 until the file loads

    def _loaded(self, sup: RunnerSupervisor, f: SourceFile, result: wire.LoadResult) -> None:
        config = result.get("config") or {}
        if f.kind == "auth":
            if config.get("motiaConfig"):
                self.motia_config = MotiaConfig.from_load(f.path, sup.language, config)
            if f.path == self._stream_auth_path and (not config.get("motiaConfig") or config.get("authenticate")):
                self.auth = AuthHook(f.path, sup.language)
        elif f.kind == "stream":
            name = config.get("name")
            if not isinstance(name, str) or not name:
                self.stream_errors[str(f.path)] = "stream config needs a non-empty name"
                sup.forget(str(f.path))
                return
            self.streams[name] = StreamDef(name, f.path, sup.language, config, bool(result.get("canAccess")))
        else:
            step = Step(f.path, sup.language, config, middleware=int(result.get("middleware") or 0))
            try:
                if config.get("dialect"):  # a one-argument file: its trigger is declared in steppe.toml
                    step.config = config = complete_config(config, f.path, self.root, self._declarations)
                validate_config(config)
                if config.get("type") != "noop" and not result.get("handler"):
                    raise ConfigError("the file exports no handler")
            except ConfigError as e:
                step.error = str(e)
                self._on_event("error", f"invalid step {self._rel(f.path)}: {e}")
            self.steps[str(f.path)] = step

    async def reload_motia_config(self) -> None:
        """Dev mode: motia.config changed (or appeared, or went): drop what it added, then load it again."""
        old = self.motia_config
        for key in self._motia_files:
            self.remove_file(Path(key))
        for key in [k for k in self.steps if old and k.startswith(f"{old.path}#")]:
            del self.steps[key]  # a registerApi route: the runner drops it when the config loads again
        self._motia_files.clear()
        self.motia_config = None
        if self.auth and old and self.auth.path == old.path:
            self.auth = None
        path = find_motia_config(self.root)
        self._stream_auth_path = find_auth_file(self.root, self._auth_file or None) or path
        if path is None or (language := self.registry.language_of(path)) is None:
            return
        if (sup := self.supervisors.get(language)) is None:
            await self._load_language(language, [SourceFile(path, "auth")])
        else:
            await self._load_file(sup, SourceFile(path, "auth"))
        if self.motia_config:
            await self._load_motia_extras(self.motia_config)
        for step, reason in self.conflicts():
            step.error = reason
            self._on_event("error", reason)

    def motia_plugin_dirs(self) -> list[Path]:
        """The folders motia.config's local plugins load steps from (watched by dev reload)."""
        dirs = [Path(str(p.get("dirname"))) for p in self.motia_config.plugins] if self.motia_config else []
        return [d for d in dirs if d.is_absolute() and d.is_dir()]

    def _runner_unhealthy(self, language: str, reason: str | None) -> None:
        """A crash-looping runner: its steps are listed as unhealthy, with the reason (None: it recovered)."""
        for step in self.steps.values():
            if step.language == language and step.error is None:
                step.unhealthy = reason

    def conflicts(self) -> list[tuple[Step, str]]:
        """Steps clashing with an earlier one (same name, or same method and route), with the reason."""
        names: dict[str, Step] = {}
        routes: dict[tuple[str, str], Step] = {}
        found = []
        for step in self.steps.values():
            if not step.ok:
                continue
            if (other := names.setdefault(step.name, step)) is not step:
                found.append((step, f"two steps are named {step.name!r}: {self._rel(other.path)} and "
                                    f"{self._rel(step.path)}"))
            if step.type == "api":
                key = (step.method, _route_shape(step.route))
                if (other := routes.setdefault(key, step)) is not step:
                    found.append((step, f"two steps serve {step.method} {step.route}: {self._rel(other.path)} "
                                        f"and {self._rel(step.path)}"))
        return found

    def _check_unique(self) -> None:
        if problems := self.conflicts():
            raise ProjectError("; ".join(reason for _, reason in problems))

    async def reload_file(self, f: SourceFile) -> None:
        """Load a new or changed file (dev mode); a clash it causes marks it as an error, not a stop."""
        self.remove_file(f.path, forget=False)
        language = self.registry.language_of(f.path)
        if language is None:
            return
        if (sup := self.supervisors.get(language)) is None:
            await self._load_language(language, [f])
        else:
            await self._load_file(sup, f)
        for step, reason in self.conflicts():
            step.error = reason
            self._on_event("error", reason)

    def remove_file(self, path: Path, forget: bool = True) -> None:
        self.steps.pop(str(path), None)
        self.stream_errors.pop(str(path), None)
        for name in [n for n, s in self.streams.items() if s.path == path]:
            del self.streams[name]
        if forget and (language := self.registry.language_of(path)) and (sup := self.supervisors.get(language)):
            sup.forget(str(path))

    def failed_files(self) -> list[SourceFile]:
        """Step and stream files that did not load (dev reload retries them); a step whose runner cannot
        run here, or a registerApi route of motia.config, is not a file to retry."""
        failed = [SourceFile(s.path, "step") for key, s in self.steps.items()
                  if s.error is not None and s.unavailable is None and "#" not in key
                  and self.registry.language_of(s.path) is not None]  # no runner for it: nothing to retry
        failed += [SourceFile(Path(key), "stream") for key in self.stream_errors
                   if classify(Path(key), self.registry.extra_extensions()) == "stream"]
        return [f for f in failed if f.path.is_file()]

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def rel(self, path: Path) -> str:
        return self._rel(path)

    def ok_steps(self, kind: str | None = None) -> list[Step]:
        return [s for s in self.steps.values() if s.ok and (kind is None or s.type == kind)]

    def step_named(self, name: str) -> Step | None:
        # once per delivery: remembered, and checked against `steps` (files reload, steps fail) on each use
        hit = self._named.get(name)
        if hit is not None and hit[1].ok and hit[1].name == name and self.steps.get(hit[0]) is hit[1]:
            return hit[1]
        found = next(((key, s) for key, s in self.steps.items() if s.ok and s.name == name), None)
        if found is None:
            self._named.pop(name, None)
            return None
        self._named[name] = found
        return found[1]

    def topic_routes(self) -> dict[str, list[str]]:
        routes: dict[str, list[str]] = {}
        for step in self.ok_steps("event"):
            for topic in step.subscribes:
                routes.setdefault(topic, []).append(step.name)
        return routes

    async def stop(self, grace: float = 5.0) -> None:
        await asyncio.gather(*(s.stop(grace) for s in self.supervisors.values()), return_exceptions=True)


def _describe_load_error(e: Exception) -> str:
    if isinstance(e, RpcError):
        return f"{e.type}: {e.message}" if e.type and e.type not in e.message else e.message
    return str(e) or type(e).__name__


def _route_shape(route: str) -> str:
    """`/users/:id` and `/users/:userId` are the same route."""
    return "/".join(":" if part.startswith(":") else part for part in route.rstrip("/").split("/"))


def invoke_params(step: Step, trigger: wire.Trigger, input: Any, trace_id: str,
                  flows: list[str] | None = None, delivery: DeliveryMeta | None = None) -> wire.InvokeParams:
    params: wire.InvokeParams = {"path": str(step.path), "step": step.name, "trigger": trigger, "input": input,
                                 "traceId": trace_id, "flows": flows if flows is not None else step.flows}
    if delivery is not None:
        params["topic"], params["attempt"], params["eventId"] = delivery.topic, delivery.attempt, delivery.event_id
    return params


@dataclass(frozen=True)
class DeliveryMeta:
    """What an event handler learns about the delivery it runs for (ctx.topic, ctx.attempt, ctx.eventId)."""

    topic: str
    attempt: int
    event_id: str
