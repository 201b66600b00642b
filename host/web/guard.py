"""The one guard in front of everything under `/__steppe/`: Host allowlist, admin token, cross-site rules.

It is ASGI middleware keyed on the path prefix, so every admin route (today's and the ones added later:
the Workbench under `/__steppe/ui/`, `/__steppe/api/...`, metrics) is covered without knowing about it.
Only the probes and the public stream client stay open.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ..event import new_id
from .lockout import Lockout

PREFIX = "/__steppe"
PUBLIC = frozenset({"/__steppe/health", "/__steppe/ready", "/__steppe/client.js"})
LOGIN = "/__steppe/login"
COOKIE = "steppe_admin"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(address: str) -> bool:
    if address in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """`Host` without its port, lower case; IPv6 literals keep their brackets (`[::1]`)."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass(frozen=True)
class AdminPolicy:
    token: str
    mode: str
    bind: str
    allowed_hosts: frozenset[str]

    @classmethod
    def of(cls, settings: Any) -> AdminPolicy:
        names = settings.allowed_hosts
        names = names.split(",") if isinstance(names, str) else names  # `allowed_hosts = "a.example"` in toml
        allowed = LOOPBACK_NAMES | {str(h).strip().lower() for h in names if str(h).strip()}
        return cls(settings.admin_token, settings.mode, settings.bind_address, frozenset(allowed))

    def describe(self) -> str:
        """One line for the start-up log: who may use the admin API."""
        if self.token:
            return "admin API under /__steppe/ needs the admin token"
        if self.open_without_token:
            return "admin API under /__steppe/ is open to this machine (dev on loopback)"
        return "admin API under /__steppe/ is off: set STEPPE_ADMIN_TOKEN to turn it on"

    @property
    def open_without_token(self) -> bool:
        """`dev` on a loopback bind needs no token: only this machine can reach it."""
        return not self.token and self.mode == "dev" and is_loopback(self.bind)

    @property
    def cookie_value(self) -> str:
        """What the browser holds: an HMAC of the token, never the token itself."""
        return hmac.new(self.token.encode(), b"steppe-admin-cookie", hashlib.sha256).hexdigest()

    def host_allowed(self, host_header: str) -> bool:
        return "*" in self.allowed_hosts or host_name(host_header) in self.allowed_hosts

    @staticmethod
    def presents_token(headers: dict[str, str]) -> bool:
        """Whether the request offers a credential (a wrong one is a guess; none at all is not)."""
        return headers.get("authorization", "")[:7].lower() == "bearer " or \
            COOKIE in _cookies(headers.get("cookie", ""))

    def authorized(self, headers: dict[str, str]) -> bool:
        if not self.token:
            return self.open_without_token
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        cookie = _cookies(headers.get("cookie", "")).get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self.cookie_value.encode())


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out.setdefault(name, value)
    return out


def cross_site_reason(method: str, headers: dict[str, str]) -> str | None:
    """Why a state-changing request looks like it comes from another site (a web page's form or fetch)."""
    if method not in STATE_CHANGING:
        return None
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        return "cross-site requests may not change anything here (Sec-Fetch-Site: cross-site)"
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        if origin == "null" or parts.netloc.lower() != headers.get("host", "").lower():
            return "the request's Origin does not match its Host: cross-site requests may not change anything here"
    return None


def _json_body_reason(method: str, headers: dict[str, str]) -> str | None:
    if method not in STATE_CHANGING:
        return None
    has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if has_body and kind != "application/json":
        return "admin requests that change something take an application/json body only"
    return None


Refusal = tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]


class AdminGuard:
    """ASGI middleware: everything under /__steppe/ except PUBLIC passes the policy or is refused."""

    def __init__(self, app: ASGIApp, policy: AdminPolicy) -> None:
        self.app, self.policy = app, policy
        self.lockout = Lockout()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] not in ("http", "websocket") or not (path == PREFIX or path.startswith(PREFIX + "/")) \
                or path in PUBLIC:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "GET")
        address = (scope.get("client") or ("",))[0]
        if self.policy.token and (wait := self.lockout.wait(address)):
            refusal: Refusal | None = (
                429, {"error": "Too Many Requests", "reason": f"{self.lockout.tries} wrong admin tokens from this "
                      f"address within {self.lockout.window:.0f} s: try again in {wait:.0f} s"},
                [(b"retry-after", str(int(wait) + 1).encode())])
        else:
            refusal = self.refusal(method, headers, login=path == LOGIN)
            if refusal is not None and refusal[0] == 401 and self.policy.presents_token(headers):
                self.lockout.failed(address)
        if refusal is None and path == LOGIN and scope["type"] == "http":
            await self.login(scope, send, address)
            return
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal[1]["reason"][:120]})
        else:
            status, payload, extra = refusal
            await _send_json(send, status, payload, extra)

    def refusal(self, method: str, headers: dict[str, str], login: bool = False) -> Refusal | None:
        """Why this request may not pass (status, payload, extra headers), or None. The login route checks
        the token itself."""
        p = self.policy
        if not p.host_allowed(headers.get("host", "")):
            return 403, {"error": "Forbidden", "reason": "this Host name is not allowed for /__steppe/ (add it to "
                         "allowed_hosts)"}, []
        if not p.token and not p.open_without_token:
            return 403, {"error": "Forbidden", "reason": "the admin API is off: set STEPPE_ADMIN_TOKEN (or admin_token "
                         "in steppe.toml) to turn it on"}, []
        if (why := cross_site_reason(method, headers)) is not None:
            return 403, {"error": "Forbidden", "reason": why}, []
        if p.token and not login and not p.authorized(headers):
            return 401, {"error": "Unauthorized", "reason": "the admin API needs the admin token: "
                         "Authorization: Bearer <token>, or the cookie from /__steppe/login"}, \
                [(b"www-authenticate", b'Bearer realm="steppe-admin"')]
        if (why := _json_body_reason(method, headers)) is not None:
            return 415, {"error": "Unsupported Media Type", "reason": why}, []
        return None

    async def login(self, scope: Scope, send: Send, address: str) -> None:
        """GET /__steppe/login?token=...: trade the token for the cookie once, then go to the Workbench."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0]
        if not self.policy.token or not hmac.compare_digest(given.encode(), self.policy.token.encode()):
            if given:
                self.lockout.failed(address)
            await _send_json(send, 401, {"error": "Unauthorized", "reason": "wrong or missing token"})
            return
        cookie = f"{COOKIE}={self.policy.cookie_value}; HttpOnly; SameSite=Strict; Path=/__steppe"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", b"/__steppe/ui/"), (b"set-cookie", cookie.encode()),
                                (b"cache-control", b"no-store"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


async def _send_json(send: Send, status: int, payload: dict[str, Any],
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    trace_id = new_id()
    body = orjson.dumps({**payload, "traceId": trace_id})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-trace-id", trace_id.encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})
