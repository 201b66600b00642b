"""What a Motia project's `motia.config.ts` means to the backend, as its loaded form tells the host.

The Node runner loads the file as the project's stream auth hook (kind "auth") and answers with:
`authenticate` (whether `streamAuth.authenticate` exists), `contextSchema` (JSON Schema of the auth
context), `plugins` ([{dirname, steps: globs}] from local plugins), `routes` ([{key, config}] registered
with `registerApi`; each key is invoked like a step file) and `warnings` (plugins it had to skip).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .discovery import SKIPPED_DIRS, SourceFile, classify
from .steps import ConfigError, Step, validate_config

CONFIG_NAMES = ("motia.config.ts", "motia.config.mts", "motia.config.js", "motia.config.mjs")


def find_motia_config(root: Path) -> Path | None:
    return next((root / name for name in CONFIG_NAMES if (root / name).is_file()), None)


@dataclass
class MotiaConfig:
    path: Path
    language: str
    authenticate: bool = False
    context_schema: dict[str, Any] | None = None
    plugins: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_load(cls, path: Path, language: str, config: dict[str, Any]) -> MotiaConfig:
        schema = config.get("contextSchema")
        return cls(path, language, bool(config.get("authenticate")), schema if isinstance(schema, dict) else None,
                   list(config.get("plugins") or []), list(config.get("routes") or []),
                   [str(w) for w in config.get("warnings") or []])

    def plugin_files(self, known: set[str]) -> list[SourceFile]:
        """Step and stream files the local plugins name (their `steps` globs under their `dirname`),
        except those already loaded from steps/ or src/."""
        found: dict[Path, SourceFile] = {}
        for plugin in self.plugins:
            base = Path(str(plugin.get("dirname", "")))
            if not base.is_absolute() or not base.is_dir():
                continue
            for pattern in plugin.get("steps") or []:
                for path in sorted(base.glob(str(pattern))):
                    rel = path.relative_to(base).parts
                    if any(p in SKIPPED_DIRS or p.startswith(".") for p in rel) or str(path) in known:
                        continue
                    if path.is_file() and (kind := classify(path)):
                        found.setdefault(path, SourceFile(path, kind))
        return list(found.values())

    def route_steps(self) -> list[Step]:
        """One API step per registerApi route (an invalid one is listed with its error)."""
        steps = []
        for route in self.routes:
            step = Step(Path(str(route.get("key"))), self.language, dict(route.get("config") or {}))
            try:
                validate_config(step.config)
            except ConfigError as e:
                step.error = str(e)
            steps.append(step)
        return steps


def check_auth_context(context: Any, schema: dict[str, Any]) -> None:
    """Raises ValueError when an authenticate hook's context does not match `streamAuth.contextSchema`."""
    import jsonschema  # only projects with a streamAuth context schema pay for it

    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(context), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "the context"
        raise ValueError(f"the auth context does not match streamAuth.contextSchema at {where}: {errors[0].message}")
