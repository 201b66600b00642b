"""Triggers for step files that carry no config (the tutorial's one-argument dialect, docs/steps.md).

Such a file's runner answers `load` with `{"dialect": "tutorial"}` (plus `type: cron, cron` for a
`{schedule, handler}` export). The project declares the trigger outside the code, in steppe.toml:

    [steps."webhook-handler.step.js"]     # the file name, or its path under steps/ (or src/, or the root)
    path = "/webhook/github"              # an API step (method defaults to POST)
    [steps."spam-filter.step.js"]
    subscribes = ["email-received"]       # an event step; topics may be patterns: "pr-*", "*"

A file with no declaration (and no schedule) subscribes to every topic ("*"): the tutorial's handlers
check `event.topic` themselves. The bus never hands a wildcard subscriber its own emissions, and the
hop limit (`max_hops`) cuts a trace that keeps cycling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .steps import ConfigError

# What a declaration may say; anything else is a mistake worth stopping on.
DECLARATION_KEYS = ("name", "type", "path", "method", "subscribes", "cron", "emits", "flows", "description",
                    "infrastructure", "bodySchema", "input")
_SUFFIXES = (".step.ts", ".step.js", ".step.mjs", ".step.cjs", "_step.py", "_step.rb", ".step.py", ".step.rb",
             ".ts", ".js", ".mjs", ".cjs", ".py", ".rb")


def default_name(path: Path) -> str:
    """`webhook-handler.step.js` → `webhook-handler`, `classify_step.py` → `classify`."""
    name = path.name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def names_of(path: Path, root: Path) -> list[str]:
    """The names a declaration may give a file: its path from the root, from its steps/ or src/ folder,
    and its file name."""
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    return [rel, rel.split("/", 1)[1] if rel.startswith(("steps/", "src/")) else rel, path.name]


def unmatched(declarations: dict[str, Any], paths: list[Path], root: Path) -> list[str]:
    """Declarations naming no step file (a typo would otherwise leave its file on the default)."""
    known = {name for path in paths for name in names_of(path, root)}
    return sorted(set(declarations) - known)


def declaration_for(path: Path, root: Path, declarations: dict[str, Any]) -> dict[str, Any]:
    """The `[steps."<file>"]` table naming this file (see names_of), or {}."""
    names = names_of(path, root)
    rel = names[0]
    found: Any = next((declarations[n] for n in names if n in declarations), {})
    if not isinstance(found, dict):
        raise ConfigError(f'[steps."{rel}"] in steppe.toml must be a table')
    if unknown := sorted(set(found) - set(DECLARATION_KEYS)):
        raise ConfigError(f'[steps."{rel}"] in steppe.toml has unknown keys {", ".join(unknown)}')
    return found


def complete_config(loaded: dict[str, Any], path: Path, root: Path, declarations: dict[str, Any]) -> dict[str, Any]:
    """A full step config for a dialect file: its declaration, over what the file itself said."""
    declared = declaration_for(path, root, declarations)
    config: dict[str, Any] = {k: v for k, v in loaded.items() if k in ("type", "cron")}
    config.update(declared)
    config.setdefault("name", default_name(path))
    if "type" not in declared:
        if "path" in declared:
            config["type"] = "api"
        elif "cron" in declared:
            config["type"] = "cron"
        elif "subscribes" in declared or "type" not in config:
            config["type"] = "event"
    if config["type"] == "api":
        config.setdefault("method", "POST")
    if config["type"] == "event":
        config.setdefault("subscribes", ["*"])
    config.setdefault("emits", [])
    config["dialect"] = "tutorial"
    return config
