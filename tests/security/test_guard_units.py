"""The admin guard's rules and the edge limits as plain functions (the real-host tests are beside this)."""

from __future__ import annotations

import hmac

import pytest

from steppe.web import guard
from steppe.web.guard import AdminPolicy, cross_site_reason, host_name
from steppe.web.limits import json_too_deep


def policy(token: str = "", mode: str = "start", bind: str = "127.0.0.1") -> AdminPolicy:
    return AdminPolicy(token, mode, bind, frozenset(guard.LOOPBACK_NAMES | {"api.example.test"}))


def test_tokens_and_cookies_are_compared_in_constant_time(monkeypatch):
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):  # noqa: ANN001, ANN202
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(guard.hmac, "compare_digest", spy)
    p = policy("s3cret")
    assert p.authorized({"authorization": "Bearer s3cret"})
    assert not p.authorized({"authorization": "Bearer s3cre"})
    assert p.authorized({"cookie": f"a=b; steppe_admin={p.cookie_value}"})
    assert not p.authorized({"cookie": "steppe_admin=s3cret"})
    assert len(seen) == 4 and (b"s3cret", b"s3cret") in seen
    assert "s3cret" not in p.cookie_value


@pytest.mark.parametrize(("mode", "bind", "open_"), [
    ("dev", "127.0.0.1", True), ("dev", "::1", True), ("dev", "localhost", True), ("dev", "0.0.0.0", False),
    ("dev", "192.168.1.5", False), ("start", "127.0.0.1", False),
])
def test_only_dev_on_loopback_is_open_without_a_token(mode, bind, open_):
    assert policy(mode=mode, bind=bind).open_without_token is open_
    assert policy(mode=mode, bind=bind).authorized({}) is open_


@pytest.mark.parametrize(("header", "name", "allowed"), [
    ("localhost:3000", "localhost", True), ("127.0.0.1", "127.0.0.1", True), ("[::1]:8080", "[::1]", True),
    ("API.example.test:443", "api.example.test", True), ("evil.example", "evil.example", False),
    ("127.0.0.1.evil.example", "127.0.0.1.evil.example", False), ("", "", False),
])
def test_host_allowlist(header, name, allowed):
    assert host_name(header) == name
    assert policy().host_allowed(header) is allowed


def test_cross_site_rules():
    same = {"host": "127.0.0.1:3000", "origin": "http://127.0.0.1:3000"}
    assert cross_site_reason("POST", same) is None
    assert cross_site_reason("POST", {"host": "127.0.0.1:3000"}) is None  # curl and the CLI send no Origin
    assert cross_site_reason("POST", {**same, "origin": "http://evil.example"})
    assert cross_site_reason("DELETE", {**same, "origin": "null"})
    assert cross_site_reason("PUT", {**same, "sec-fetch-site": "cross-site"})
    assert cross_site_reason("GET", {**same, "origin": "http://evil.example"}) is None


def test_json_depth_check_counts_brackets_outside_strings_only():
    assert not json_too_deep(b"[" * 10 + b"]" * 10, 10) and json_too_deep(b"[" * 11 + b"]" * 11, 10)
    assert not json_too_deep(b'{"a": "' + b"[" * 50 + b'"}', 10)
    assert not json_too_deep(b'["\\"[[[[[[[[[[[[", [[1]]]', 3) and json_too_deep(b'["\\"", [[[1]]]]', 3)
