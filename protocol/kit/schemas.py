"""Checks every message against protocol/schemas/ when `jsonschema` is importable (the kit itself needs only
the standard library, so without it this check is skipped and the table says so)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .loader import PROTOCOL_DIR

SCHEMAS_DIR = PROTOCOL_DIR / "schemas"
BASE = "urn:steppe:protocol:1:"
# What a runner may send unprompted (besides answers): its handlers' calls, logs and pings.
RUNNER_METHODS = {"log", "ping", "emit", "state.get", "state.set", "state.delete", "state.getGroup",
                  "state.clear", "streams.get", "streams.set", "streams.delete", "streams.getGroup",
                  "streams.send"}


class MessageChecker:
    """Feed it every message with its direction ("in": runner → kit, "out": kit → runner); it keeps the
    open requests of both sides so that it can check each answer against its method's result schema."""

    def __init__(self, directory: Path = SCHEMAS_DIR) -> None:
        self.problems: list[str] = []
        self._open: dict[tuple[str, Any], tuple[str, str | None]] = {}
        self._validators: dict[str, Any] = {}
        try:
            import jsonschema
            from referencing import Registry, Resource
        except ImportError:
            self.enabled = False
            return
        self.enabled = True
        self._jsonschema = jsonschema
        schemas = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
        self.methods = {s["$id"].removeprefix(BASE) for s in schemas} - {"envelope"}
        self._registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)

    def observe(self, direction: str, msg: dict[str, Any]) -> None:
        if not self.enabled:
            return
        method = msg.get("method")
        if isinstance(method, str):
            self._check("envelope#/$defs/" + ("request" if "id" in msg else "notification"), msg, direction)
            if method in self.methods:
                self._check(method, msg, direction)
            elif direction == "in" and method not in RUNNER_METHODS:
                self.problems.append(f"runner sent unknown method {method!r}")
            if "id" in msg:
                params = msg.get("params")
                trigger = params.get("trigger") if method == "invoke" and isinstance(params, dict) else None
                self._open[(direction, msg["id"])] = (method, trigger)
            return
        asked = self._open.pop(("out" if direction == "in" else "in", msg.get("id")), None)
        self._check("envelope#/$defs/" + ("errorResponse" if "error" in msg else "response"), msg, direction)
        if asked and "result" in msg and "error" not in msg:
            method, trigger = asked
            if method in self.methods:
                where = f"result-{trigger}" if method == "invoke" and trigger else "result"
                self._check(f"{method}#/$defs/{where}", msg["result"], direction, f"{method} result")

    def _check(self, ref: str, instance: Any, direction: str, label: str | None = None) -> None:
        if (validator := self._validators.get(ref)) is None:
            uri = BASE + (ref if "#" in ref else ref + "#")
            validator = self._jsonschema.Draft202012Validator({"$ref": uri}, registry=self._registry)
            self._validators[ref] = validator
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))[:1]:
            side = "runner" if direction == "in" else "kit"
            text = error.message if len(error.message) < 200 else error.message[:200] + "…"
            self.problems.append(f"schema ({side} {label or ref}) at {error.json_path}: {text}")
