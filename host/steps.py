"""A step as the host sees it: its config, validated and normalised, from whichever language loaded it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .settings_check import is_number

STEP_TYPES = ("api", "event", "cron", "noop")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")


class ConfigError(ValueError):
    pass


@dataclass
class Step:
    path: Path
    language: str
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # load error or invalid config: the step is listed but not served
    unavailable: str | None = None  # the runner for its language cannot run here
    unhealthy: str | None = None  # its runner is crash-looping and is no longer restarted
    middleware: int = 0

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.path.name)

    @property
    def type(self) -> str:
        return str(self.config.get("type", "?"))

    @property
    def ok(self) -> bool:
        """Loaded and valid: routed and scheduled (an unhealthy step stays routed; calls fail fast)."""
        return self.error is None and self.unavailable is None

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if self.unavailable:
            return "unavailable"
        return "unhealthy" if self.unhealthy else "ok"

    # read from configs that may be invalid too (a step that did not load is still listed and drawn): only the
    # names a list gives, never the letters of a string
    @cached_property
    def flows(self) -> list[str]:
        return names_in(self.config.get("flows"))

    @cached_property
    def subscribes(self) -> list[str]:
        return names_in(self.config.get("subscribes"))

    @cached_property  # read on every emit and delivery; a step's config never changes (reload makes a new Step)
    def emits(self) -> list[str]:
        emits = self.config.get("emits")
        return [e if isinstance(e, str) else str(e.get("topic")) for e in emits
                if isinstance(e, str) or isinstance(e, dict)] if isinstance(emits, list) else []

    @property
    def method(self) -> str:
        return str(self.config.get("method", "GET")).upper()

    @property
    def route(self) -> str:
        return str(self.config.get("path", ""))

    @property
    def queue(self) -> dict[str, Any]:
        return dict((self.config.get("infrastructure") or {}).get("queue") or {})

    @property
    def handler_timeout(self) -> float | None:
        t = ((self.config.get("infrastructure") or {}).get("handler") or {}).get("timeout")
        return float(t) if t else None

    def describe(self) -> str:
        """Route or topics, for `steppe list`."""
        if self.type == "api":
            return f"{self.method} {self.route}"
        if self.type == "event":
            return "on " + ", ".join(self.subscribes)
        if self.type == "cron":
            return f"cron {self.config.get('cron')}"
        if self.type == "noop":
            return "noop"
        return ""


def names_in(value: Any) -> list[str]:
    """The names a config list gives (any other value, or item, is not a name)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def validate_config(config: dict[str, Any]) -> None:
    """Raise ConfigError naming what is wrong with a step config."""
    kind = config.get("type")
    if kind not in STEP_TYPES:
        raise ConfigError(f"config.type must be one of {', '.join(STEP_TYPES)}, got {kind!r}")
    if not isinstance(config.get("name"), str) or not config["name"]:
        raise ConfigError("config.name must be a non-empty string")
    flows = config.get("flows")
    if flows is not None and (not isinstance(flows, list) or not all(isinstance(f, str) for f in flows)):
        raise ConfigError("config.flows must be a list of flow names")
    _check_infrastructure(config.get("infrastructure"))
    emits = config.get("emits", [])
    if not isinstance(emits, list) or not all(isinstance(e, str) or (isinstance(e, dict) and "topic" in e)
                                              for e in emits):
        raise ConfigError("config.emits must be a list of topics or {topic, label?, conditional?}")
    if kind == "api":
        if not isinstance(config.get("path"), str) or not config["path"].startswith("/"):
            raise ConfigError("api step needs config.path starting with '/'")
        names = _PARAM.findall(config["path"])
        if twice := next((n for i, n in enumerate(names) if n in names[:i]), None):  # the router would refuse it
            raise ConfigError(f"api step config.path {config['path']!r} names the path parameter {twice!r} twice")
        if str(config.get("method", "")).upper() not in HTTP_METHODS:
            raise ConfigError(f"api step needs config.method, one of {', '.join(HTTP_METHODS)}")
        _check_api_docs(config)
        _check_schemas(config)
    elif kind == "event":
        subs = config.get("subscribes")
        if not isinstance(subs, list) or not subs or not all(isinstance(s, str) for s in subs):
            raise ConfigError("event step needs config.subscribes, a non-empty list of topics")
        _check_schemas(config)
    elif kind == "cron":
        expr = config.get("cron")
        if not isinstance(expr, str) or not cron_is_valid(expr):
            raise ConfigError(f"cron step needs a valid 5- or 6-field config.cron, got {expr!r}")


# infrastructure.handler / .queue settings: (what a valid value is, the check); Motia's own schema, except that
# its AWS caps (timeouts of 900 s, ...) are not kept, and `concurrency` is Steppe's
_SETTINGS: dict[str, dict[str, tuple[str, Callable[[Any], bool]]]] = {
    "handler": {"timeout": ("a number of seconds above 0", lambda x: is_number(x) and x > 0)},
    "queue": {
        "type": ("'standard' or 'fifo'", lambda x: x in ("standard", "fifo")),
        "concurrency": ("a whole number above 0", lambda x: is_number(x) and x >= 1 and int(x) == x),
        "maxRetries": ("a whole number, 0 or more", lambda x: is_number(x) and x >= 0 and int(x) == x),
        "visibilityTimeout": ("a number of seconds above 0", lambda x: is_number(x) and x > 0),
        "delaySeconds": ("a number of seconds, 0 or more", lambda x: is_number(x) and x >= 0),
    },
}


_STATUS_KEY = re.compile(r"^(?:[1-5]\d\d|[1-5]XX|default)$")  # OpenAPI's response keys


def _check_api_docs(config: dict[str, Any]) -> None:
    """The fields an API step's OpenAPI entry is made from, shaped as Motia's schema has them."""
    query = config.get("queryParams")
    if query is not None and (not isinstance(query, list) or not all(
            isinstance(q, dict) and isinstance(q.get("name"), str) and q["name"] for q in query)):
        raise ConfigError("config.queryParams must be a list of {name, description?}")
    for key in ("bodySchema", "responseSchema"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise ConfigError(f"config.{key} must be a JSON Schema object")
    responses = config.get("responseSchema") or {}
    if not all(_STATUS_KEY.match(str(code)) and isinstance(schema, dict) for code, schema in responses.items()):
        raise ConfigError("config.responseSchema must map HTTP statuses to JSON Schema objects")
    if config.get("description") is not None and not isinstance(config["description"], str):
        raise ConfigError("config.description must be text")


def _check_schemas(config: dict[str, Any]) -> None:
    """The schemas requests and deliveries are validated against must be JSON Schemas: a typo in one would
    otherwise fail every request (500) or delivery of the step, away from its file."""
    found = [(f"config.{key}", config[key]) for key in ("bodySchema", "input")
             if isinstance(config.get(key), dict) and config[key]]
    found += [(f"config.responseSchema.{code}", schema) for code, schema in (config.get("responseSchema") or {}).items()
              if schema]
    if not found:
        return
    from jsonschema import SchemaError, validators  # ~70 ms: only for projects whose steps have schemas

    for name, schema in found:
        try:
            validators.validator_for(schema).check_schema(schema)
        except SchemaError as e:
            where = "/".join(map(str, e.absolute_path)) or "its top"
            message = e.message if len(e.message) <= 200 else e.message[:200] + "…"
            raise ConfigError(f"{name} is not a valid JSON Schema: at {where}: {message}") from None


def _check_infrastructure(infra: Any) -> None:
    """Raise ConfigError for an infrastructure setting the host could not use (it would fail where it is
    read, away from the step file)."""
    if infra is None:
        return
    if not isinstance(infra, dict):
        raise ConfigError("config.infrastructure must be an object {handler?, queue?}")
    for part, settings in _SETTINGS.items():
        values = infra.get(part)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"config.infrastructure.{part} must be an object")
        for key, (valid, check) in settings.items():
            if values.get(key) is not None and not check(values[key]):
                raise ConfigError(f"config.infrastructure.{part}.{key} must be {valid}, got {values[key]!r}")


def cron_is_valid(expr: str) -> bool:
    fields = expr.split()
    if len(fields) not in (5, 6):
        return False
    # croniter (~5 MB, and it runs `file -b` when imported) only for projects with a cron step
    from croniter import croniter

    return bool(croniter.is_valid(expr, second_at_beginning=len(fields) == 6))


_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


def starlette_path(express_path: str) -> str:
    """`/users/:id` → `/users/{id}` (Express syntax in configs, Starlette's in the router)."""
    return _PARAM.sub(r"{\1}", express_path)
