"""Secrets never leave the runner in a log: values under secret-looking keys, and credentials inside text, become
`[REDACTED]` before a record is kept, printed or handed on.

Key rule: a key is secret when its name, lower-cased and with `-` and `_` removed, *contains* one of
the secret words (so `userPassword`, `X-Api-Key` and `db_password_hash` all match `password`/`apikey`).
`authorization` and `cookie` (hence `proxy-authorization` and `set-cookie`) are always secret; the
other words come from the `redact_keys` setting. Text (messages, and string values at any depth) also
loses `Bearer <token>` / `Basic <credentials>` and `<secret key>=<value>` / `"<secret key>": "<value>"`.

The same rules as the host's (host/redact.py), with the keys the host passes in `STEPPE_REDACT_KEYS`
(the defaults when it is unset). The host applies them again to every record it receives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
ALWAYS_SECRET = ("authorization", "proxy-authorization", "cookie", "set-cookie")
DEFAULT_REDACT_KEYS = "password,passwd,secret,token,api_key,apikey,access_key,private_key"
MAX_DEPTH = 100  # deeper parts of a logged value are replaced whole: a log record is not a data store

# `Bearer abc.def` / `Basic dXNlcjpwdw==` (the scheme is kept, the credentials are not)
_SCHEME = re.compile(r"\b(Bearer|Basic|Digest)(\s+)([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
# `key=value`, `key: value`, `"key": "value"`, `'key': 'value'`; the key is checked by _secret_key
_PAIR = re.compile(
    r"""(?P<q>["']?)(?P<key>[A-Za-z0-9_\-.]+)(?P=q)(?P<sep>\s*[:=]\s*)"""
    r"""(?!\[REDACTED\])(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:(?:Bearer|Basic|Digest)\s+)?[^\s,;&}\]"']+)""",
    re.IGNORECASE)


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def parse_keys(keys: str | Iterable[str]) -> list[str]:
    """`redact_keys` as a comma-separated string (env var, CLI) or a list (steppe.toml)."""
    items = keys.split(",") if isinstance(keys, str) else keys
    return [k.strip() for k in items if isinstance(k, str) and k.strip()]


class Redactor:
    def __init__(self, keys: str | Iterable[str] = DEFAULT_REDACT_KEYS) -> None:
        words = {_norm(k) for k in (*ALWAYS_SECRET, *parse_keys(keys))}
        self.words = tuple(sorted(w for w in words if w))

    def secret_key(self, name: str) -> bool:
        norm = _norm(name)
        return any(w in norm for w in self.words)

    def text(self, s: str) -> str:
        lowered = s.lower()
        if any(w in _norm(lowered) for w in self.words):
            s = _PAIR.sub(self._pair, s)  # first: it takes `authorization: Bearer x` whole
        if "bearer" in lowered or "basic" in lowered or "digest" in lowered:
            s = _SCHEME.sub(self._scheme, s)
        return s

    def value(self, v: Any, depth: int = 0) -> Any:
        """A copy of `v` with secrets masked; the original is left as it was."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, Mapping):
            if depth >= MAX_DEPTH:
                return f"{MASK} (nested deeper than {MAX_DEPTH} levels)"
            return {k: MASK if isinstance(k, str) and self.secret_key(k) and v2 is not None
                    else self.value(v2, depth + 1) for k, v2 in v.items()}
        if isinstance(v, (list, tuple)):
            if depth >= MAX_DEPTH:
                return f"{MASK} (nested deeper than {MAX_DEPTH} levels)"
            return [self.value(x, depth + 1) for x in v]
        return v

    @staticmethod
    def _scheme(m: re.Match[str]) -> str:
        scheme, space, cred = m.group(1), m.group(2), m.group(3)
        if scheme.lower() == "basic" and not _looks_basic(cred):
            return m.group(0)  # "Basic setup": prose, not credentials
        return f"{scheme}{space}{MASK}"

    def _pair(self, m: re.Match[str]) -> str:
        if not self.secret_key(m.group("key")):
            return m.group(0)
        value = m.group("value")
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{m.group('q')}{m.group('key')}{m.group('q')}{m.group('sep')}{quote}{MASK}{quote}"


def _looks_basic(cred: str) -> bool:
    import base64  # on first use: only text that says "Basic ..." gets here
    import binascii

    try:
        return b":" in base64.b64decode(cred + "=" * (-len(cred) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False


REDACTOR = Redactor(os.environ.get("STEPPE_REDACT_KEYS", DEFAULT_REDACT_KEYS))
