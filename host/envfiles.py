"""A project's `.env` files, read the way Motia's CLI read them: before anything else starts.

`.env` then `.env.local` from the project root fill in environment variables the real environment
does not set (real environment > .env.local > .env). They are loaded into this process's environment,
so that settings (STEPPE_*), runners and handlers all see them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

ENV_FILES = (".env", ".env.local")  # later files win over earlier ones


def read_env_files(root: Path) -> dict[str, str]:
    """The variables the project's env files define, `.env.local` over `.env` (unset names dropped). A
    `${NAME}` reference takes the value NAME ends up with: the real environment's when it sets NAME (as
    it wins over the files), else the files' (the two read as one, `.env.local` last)."""
    texts = [path.read_text(encoding="utf-8") for name in ENV_FILES if (path := root / name).is_file()]
    if not texts:
        return {}
    from dotenv.main import DotEnv  # here: most projects have no .env, and it costs 5 ms of start-up

    # override=False: while references are resolved, the process environment wins over the files' values
    values = DotEnv(None, stream=io.StringIO("\n".join(texts)), interpolate=True, override=False).dict()
    return {k: v for k, v in values.items() if v is not None}


def load_env_files(root: Path, environ: os._Environ[str] | dict[str, str] | None = None) -> list[str]:
    """Sets each variable from the env files that `environ` (default: os.environ) does not have yet.
    Returns the names of the files that were read."""
    target = os.environ if environ is None else environ
    for key, value in read_env_files(root).items():
        target.setdefault(key, value)
    return [name for name in ENV_FILES if (root / name).is_file()]
