"""The admin surface under /__steppe/ against real `steppe start` and `steppe dev` hosts: the token, the
cookie, the Host allowlist, the cross-site rules, and the admin API's answers to bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from conftest import ADMIN_TOKEN, RunningHost, wait_until, write_project

# every admin route today, plus paths the Workbench and metrics will add (the guard must cover them unseen)
ADMIN_GETS = ["/__steppe/steps", "/__steppe/logs", "/__steppe/events", "/__steppe/runners", "/__steppe/dlq",
              "/__steppe/dlq/1", "/__steppe/ui/", "/__steppe/api/steps", "/__steppe/metrics", "/__steppe"]
ADMIN_POSTS = [("/__steppe/emit", {"topic": "t.x", "data": {}}), ("/__steppe/dlq/replay", {"all": True}),
               ("/__steppe/dlq/drop", {"all": True})]
PROBES = ["/__steppe/health", "/__steppe/ready"]

PROJECT = {
    "steps/hello_step.py": '''
        config = {"type": "api", "name": "Hello", "path": "/hello", "method": "GET", "emits": []}
        async def handler(req, ctx):
            ctx.logger.info("hello called")
            return {"status": 200, "body": {"hi": True}}
    ''',
    "steps/sink_step.py": '''
        config = {"type": "event", "name": "Sink", "subscribes": ["t.sink"], "emits": []}
        async def handler(data, ctx):
            ctx.logger.info("sink got", {"data": data})
    ''',
}


def start(root, mode: str, *args: str, env: dict[str, str] | None = None) -> RunningHost:
    return RunningHost(root, list(args), env, mode).wait_ready()


@pytest.fixture(scope="module")
def locked(tmp_path_factory) -> RunningHost:
    """`steppe start` with the known test token, and one extra allowed Host name."""
    root = write_project(tmp_path_factory.mktemp("locked"), PROJECT)
    host = start(root, "start", env={"STEPPE_ALLOWED_HOSTS": "api.example.test"})
    yield host
    host.stop()


def unrouted_topics(host: RunningHost) -> list[str]:
    return [e["topic"] for e in host.admin_get("/__steppe/events").json()["unrouted"]]


def test_start_mode_refuses_every_admin_route_without_the_token(locked):
    # the wrong tokens from an address of their own: ten of them lock it out for a minute (test below)
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.4")) as wrong:
        for path in ADMIN_GETS:
            r = httpx.get(locked.url + path)
            assert r.status_code == 401, path
            assert r.headers["content-type"] == "application/json" and r.json()["traceId"], path
            assert "www-authenticate" in r.headers
            assert wrong.get(locked.url + path, headers={"authorization": "Bearer wrong"}).status_code == 401
    for path, body in ADMIN_POSTS:
        assert httpx.post(locked.url + path, json=body).status_code == 401, path
    assert "t.x" not in unrouted_topics(locked), "a refused emit was accepted"


def test_the_token_opens_every_admin_route(locked):
    for path in ["/__steppe/steps", "/__steppe/logs", "/__steppe/events", "/__steppe/runners", "/__steppe/dlq",
                 "/__steppe/ui/", "/__steppe/api/overview"]:
        assert locked.admin_get(path).status_code == 200, path
    for path in ["/__steppe/dlq/1", "/__steppe/no-such-route"]:  # past the guard: the routes' own 404
        r = locked.admin_get(path)
        assert r.status_code == 404 and r.json()["error"] == "Not Found", path
    r = locked.admin_post("/__steppe/emit", json={"topic": "t.sink", "data": {"n": 1}})
    assert r.status_code == 202 and r.json()["deliveries"] == 1
    assert locked.admin_post("/__steppe/dlq/replay", json={"all": True}).json() == {"replayed": 0, "ids": []}


def test_probes_stay_open_and_tell_no_pids_paths_or_payloads(locked):
    runners = locked.runners()["runners"]
    pid = runners["python"]["pid"]
    assert runners["python"]["runnerVersion"] and runners["python"]["rss"] > 0
    for path in PROBES:
        r = httpx.get(locked.url + path)
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"status", "reasons"} and body["status"] == "ok"
        assert str(pid) not in r.text and str(locked.root) not in r.text
    # the public stream client is not admin either
    assert httpx.get(locked.url + "/__steppe/client.js").status_code == 200


def test_browser_trades_the_token_for_an_httponly_cookie_once(locked):
    with httpx.Client(base_url=locked.url) as browser:
        assert browser.get("/__steppe/login", params={"token": "wrong"}).status_code == 401
        r = browser.get("/__steppe/login", params={"token": ADMIN_TOKEN})
        assert r.status_code == 303 and r.headers["location"] == "/__steppe/ui/"
        cookie = r.headers["set-cookie"]
        for part in ("steppe_admin=", "HttpOnly", "SameSite=Strict", "Path=/__steppe"):
            assert part in cookie
        assert ADMIN_TOKEN not in cookie, "the cookie must hold a value derived from the token, not the token"
        assert browser.get("/__steppe/steps").status_code == 200  # the client now holds the cookie
    forged = httpx.get(locked.url + "/__steppe/steps", headers={"cookie": f"steppe_admin={ADMIN_TOKEN}"})
    assert forged.status_code == 401


def test_host_allowlist_stops_dns_rebinding(locked):
    evil = {**locked.admin_headers, "host": "evil.example"}
    for path in ["/__steppe/steps", "/__steppe/ui/"]:
        r = httpx.get(locked.url + path, headers=evil)
        assert r.status_code == 403 and "allowed_hosts" in r.json()["reason"]
    for name in (f"localhost:{locked.port}", f"127.0.0.1:{locked.port}", f"[::1]:{locked.port}",
                 "api.example.test"):
        assert httpx.get(locked.url + "/__steppe/steps", headers={**locked.admin_headers, "host": name}
                         ).status_code == 200, name
    assert httpx.get(locked.url + "/__steppe/health", headers={"host": "10.0.0.7:3000"}).status_code == 200
    assert httpx.get(locked.url + "/hello", headers={"host": "evil.example"}).status_code == 200  # not admin


def test_cross_site_post_is_refused_and_emits_nothing(locked):
    """Seen: a text/plain POST with `Origin: http://evil.example` emitted an event."""
    body = b'{"topic": "t.forged", "data": {}}'
    r = httpx.post(locked.url + "/__steppe/emit", content=body, headers={
        **locked.admin_headers, "origin": "http://evil.example", "content-type": "text/plain"})
    assert r.status_code == 403 and "Origin" in r.json()["reason"]
    r = httpx.post(locked.url + "/__steppe/emit", content=body, headers={
        **locked.admin_headers, "sec-fetch-site": "cross-site", "content-type": "application/json"})
    assert r.status_code == 403
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = httpx.post(locked.url + "/__steppe/emit", content=body,
                       headers={**locked.admin_headers, "content-type": kind})
        assert r.status_code == 415, kind
    assert "t.forged" not in unrouted_topics(locked)
    same_site = {**locked.admin_headers, "origin": locked.url, "content-type": "application/json"}
    assert httpx.post(locked.url + "/__steppe/emit", content=body, headers=same_site).status_code == 202


@pytest.mark.parametrize(("path", "why"), [
    ("/__steppe/logs?limit=abc", "limit"), ("/__steppe/logs?limit=-1", "limit"),
    ("/__steppe/dlq/99999999999999999999999", "id"),
])
def test_admin_input_errors_answer_400(locked, path, why):
    r = locked.admin_get(path)
    assert r.status_code == 400 and why in r.json()["error"], r.text


@pytest.mark.parametrize("body", [
    {"ids": [10**30]}, {"ids": [-1]}, {"ids": [True]}, {"ids": "1"}, [1, 2],
])
def test_dlq_selection_errors_answer_400(locked, body):
    for action in ("replay", "drop"):
        r = locked.admin_post(f"/__steppe/dlq/{action}", json=body)
        assert r.status_code == 400, (action, body, r.text)


@pytest.mark.parametrize(("body", "status"), [
    ({"topic": "t.x", "id": {"a": 1}}, 400), ({"topic": "t.x", "id": [1]}, 400),
    ({"topic": "t.x", "id": "k-1"}, 202), ({"topic": "t.x", "id": 7}, 202),
])
def test_emit_id_must_be_scalar(locked, body, status):
    assert locked.admin_post("/__steppe/emit", json=body).status_code == status


@pytest.mark.parametrize("depth", [300, 600, 1024])
def test_emit_of_too_deep_data_answers_400(locked, depth):
    raw = '{"topic": "t.deep", "data": ' + "[" * depth + "]" * depth + "}"
    r = httpx.post(locked.url + "/__steppe/emit", content=raw,
                   headers={**locked.admin_headers, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["traceId"], r.text


def test_oversized_emit_is_refused_before_it_is_read(locked):
    """Seen: a 100 MB emit grew the host to 321 MB. A declared size is refused from the header alone."""
    with socket.create_connection(("127.0.0.1", locked.port), timeout=10) as s:
        s.sendall((f"POST /__steppe/emit HTTP/1.1\r\nHost: 127.0.0.1:{locked.port}\r\n"
                   f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
                   "Content-Length: 104857600\r\n\r\n").encode())
        answer = b""  # no body was sent: a host reading it first would never answer
        while b'"limit"' not in answer and (chunk := s.recv(65536)):  # the head and body may come apart
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and '"limit"' in answer
    host_process = psutil.Process(locked.proc.pid)
    before = host_process.memory_info().rss

    def chunks():  # no Content-Length: chunked, 100 MB unless the host stops reading
        for _ in range(100):
            yield b"x" * (1024 * 1024)

    try:
        r = httpx.post(locked.url + "/__steppe/emit", content=chunks(), timeout=30,
                       headers={**locked.admin_headers, "content-type": "application/json"})
        assert r.status_code == 413
    except httpx.HTTPError:
        pass  # the host may close the connection while the client is still sending: also refused
    assert host_process.memory_info().rss - before < 40 * 1024 * 1024


def test_start_without_a_token_turns_the_admin_api_off(tmp_path):
    host = start(write_project(tmp_path, PROJECT), "start", env={"STEPPE_ADMIN_TOKEN": ""})
    try:
        for path in ["/__steppe/steps", "/__steppe/logs", "/__steppe/ui/"]:
            r = httpx.get(host.url + path, headers={"authorization": "Bearer anything"})
            assert r.status_code == 403 and "STEPPE_ADMIN_TOKEN" in r.json()["reason"]
        assert httpx.post(host.url + "/__steppe/emit", json={"topic": "t.x"}).status_code == 403
        assert httpx.get(host.url + "/__steppe/health").status_code == 200
        assert httpx.get(host.url + "/hello").json() == {"hi": True}
        assert f"listening on http://127.0.0.1:{host.port}" in host.logs(), "start must bind loopback by default"
        assert "admin API under /__steppe/ is off" in host.logs()
    finally:
        host.stop()


def test_dev_needs_no_token_on_loopback_but_does_when_bound_wider(tmp_path):
    root = write_project(tmp_path, PROJECT)
    host = start(root, "dev", env={"STEPPE_ADMIN_TOKEN": ""})
    try:
        assert httpx.get(host.url + "/__steppe/steps").status_code == 200
    finally:
        host.stop()
    wide = start(root, "dev", "--host", "0.0.0.0", env={"STEPPE_ADMIN_TOKEN": ""})
    try:
        assert httpx.get(wide.url + "/__steppe/steps").status_code == 403
    finally:
        wide.stop()
    wide = start(root, "dev", "--host", "0.0.0.0", env={"STEPPE_ADMIN_TOKEN": "dev-token"})
    try:
        assert httpx.get(wide.url + "/__steppe/steps").status_code == 401
        assert httpx.get(wide.url + "/__steppe/steps", headers={"authorization": "Bearer dev-token"}
                         ).status_code == 200
    finally:
        wide.stop()


def test_cli_admin_commands_send_the_token(locked):
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "emit", "--root", str(locked.root), "--port",
                          str(locked.port), "--topic", "t.sink", "--data", '{"via": "cli"}'],
                         capture_output=True, text=True, timeout=30,
                         env={**os.environ, "STEPPE_ADMIN_TOKEN": ADMIN_TOKEN})
    assert out.returncode == 0 and '"deliveries":1' in out.stdout, out
    wait_until(lambda: any("sink got" in r.get("msg", "") for r in locked.admin_get("/__steppe/logs").json()),
               10, "the delivery")
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "dlq", "list", "--root", str(locked.root), "--port",
                          str(locked.port)], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "STEPPE_ADMIN_TOKEN": ""})
    assert out.returncode == 1 and "401" in out.stderr, out


async def test_websockets_under_the_admin_prefix_need_the_token_too(locked):
    url = f"ws://127.0.0.1:{locked.port}/__steppe/any-socket"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    assert refused.value.response.status_code == 403
    async with connect(url, additional_headers=locked.admin_headers) as ws:  # past the guard: a stream socket
        await ws.send('{"type": "join", "data": {"streamName": "nope", "groupId": "g", "subscriptionId": "s"}}')
        assert "nope" in await ws.recv()


def test_wrong_tokens_lock_their_address_out_for_a_minute(tmp_path):
    """Seen: any number of wrong admin tokens from one client were each answered 401, and the right one then
    passed: a short token could be found by trying. Now ten wrong tokens from one address within a
    minute make that address answered 429 with Retry-After until the minute is over, the right token too;
    requests with no token at all are not guesses and do not count; other addresses are not affected."""
    host = start(write_project(tmp_path, PROJECT), "start")
    url = f"{host.url}/__steppe/steps"
    guesser = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"))
    try:
        for _ in range(20):  # no credential: a browser before login, not a guess
            assert guesser.get(url).status_code == 401
        assert guesser.get(url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
        for n in range(9):
            assert guesser.get(url, headers={"authorization": f"Bearer guess-{n}"}).status_code == 401
        assert guesser.get(f"{host.url}/__steppe/login", params={"token": "guess-9"}).status_code == 401
        locked_out = guesser.get(url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert locked_out.status_code == 429, locked_out.text
        assert "10 wrong admin tokens from this address within 60 s" in locked_out.json()["reason"]
        assert 50 <= int(locked_out.headers["retry-after"]) <= 61
        assert guesser.get(url, headers={"cookie": "steppe_admin=forged"}).status_code == 429
        assert guesser.get(f"{host.url}/hello").status_code == 200  # the steps' own routes are not locked
        assert guesser.get(f"{host.url}/__steppe/health").status_code == 200
        assert other.get(url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    finally:
        guesser.close()
        other.close()
        host.stop()
