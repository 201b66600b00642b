"""A project's `.env` files, read the way Motia's CLI read them: before anything else starts.

`.env` then `.env.local` from the project root fill in environment variables the real environment
does not set (real environment > .env.local > .env). They are loaded into this process's environment,
so that settings (STEPPE_*), runners and handlers all see them.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_FILES = (".env", ".env.local")  # later files win over earlier ones


def read_env_files(root: Path) -> dict[str, str]:
    """The variables the project's env files define, `.env.local` over `.env` (unset names dropped)."""
    merged: dict[str, str] = {}
    for name in ENV_FILES:
        path = root / name
        if path.is_file():
            from dotenv import dotenv_values  # here: most projects have no .env, and it costs 5 ms of start-up

            merged.update({k: v for k, v in dotenv_values(path, interpolate=True).items() if v is not None})
    return merged


def load_env_files(root: Path, environ: os._Environ[str] | dict[str, str] | None = None) -> list[str]:
    """Sets each variable from the env files that `environ` (default: os.environ) does not have yet.
    Returns the names of the files that were read."""
    target = os.environ if environ is None else environ
    for key, value in read_env_files(root).items():
        target.setdefault(key, value)
    return [name for name in ENV_FILES if (root / name).is_file()]
