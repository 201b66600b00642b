"""The fields of an emit besides topic and data (`messageGroupId`, `id`), from a handler and from the admin
emit, against a real host with the durable queue and a FIFO subscriber.

Seen: a handler's emit with `messageGroupId: ["a"]` (or an object) reached the queue's INSERT and failed
there with `ProgrammingError: Error binding parameter 2: type 'list' is not supported`, and with it every
other emit queued in the same turn of the host's loop (here: a good emit of the same handler, sent beside
it), although nothing was wrong with them. The admin emit ignored `messageGroupId` altogether."""

from __future__ import annotations

import httpx
import pytest

from conftest import wait_until, write_project

PROJECT = {
    "steps/fifo_step.py": '''
        config = {"type": "event", "name": "Fifo", "subscribes": ["orders"], "emits": [],
                  "infrastructure": {"queue": {"type": "fifo"}}}
        async def handler(data, ctx):
            await ctx.state.set("seen", str(data["n"]), True)
    ''',
    "steps/emitter_step.py": '''
        import asyncio
        config = {"type": "api", "name": "Emitter", "path": "/emit", "method": "POST", "emits": ["orders"]}
        async def handler(req, ctx):
            bad, good = req["body"]["bad"], req["body"]["good"]
            # both in one write of the runner, so the host takes them in the same turn
            outcomes = await asyncio.gather(
                ctx.emit({"topic": "orders", "data": {"n": 1}, "messageGroupId": bad}),
                ctx.emit({"topic": "orders", "data": {"n": 2}, "messageGroupId": good}),
                return_exceptions=True)
            return {"status": 200, "body": [None if o is None else {"type": type(o).__name__, "message": str(o)}
                                            for o in outcomes]}
    ''',
    "steps/seen_step.py": '''
        config = {"type": "api", "name": "Seen", "path": "/seen/:n", "method": "GET", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": {"seen": await ctx.state.get("seen", req["pathParams"]["n"])}}
    ''',
}


@pytest.fixture
def host(tmp_path, start_host):
    return start_host(write_project(tmp_path, PROJECT))


def seen(host, n: int):  # noqa: ANN201
    return httpx.get(f"{host.url}/seen/{n}").json()["seen"]


@pytest.mark.parametrize(("bad", "kind"), [(["a"], "an array"), ({"a": 1}, "an object"), (True, "a boolean")],
                         ids=["list", "object", "bool"])
def test_a_bad_message_group_id_is_refused_alone(host, bad, kind):
    r = httpx.post(f"{host.url}/emit", json={"bad": bad, "good": "customer-7"})
    assert r.status_code == 200, r.text
    refused, accepted = r.json()
    assert refused["type"] == "InvalidParams", refused
    # JSON's names for what came (a JS or Ruby handler was told `not list`, `not dict`, `not bool`: Python's)
    assert refused["message"] == f"emit: messageGroupId must be a string (or a number), got {kind}", refused
    assert accepted is None  # the good emit of the same turn went through
    wait_until(lambda: seen(host, 2) is not None, 10, "the good event delivered")
    assert seen(host, 1) is None


def test_a_numeric_message_group_id_is_taken_as_text(host):
    r = httpx.post(f"{host.url}/emit", json={"bad": 42, "good": None})
    assert r.json() == [None, None]
    wait_until(lambda: seen(host, 1) is not None and seen(host, 2) is not None, 10, "both delivered")


def test_the_admin_emit_takes_a_message_group_id_and_refuses_a_bad_one(host):
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "orders", "data": {"n": 3},
                                                       "messageGroupId": ["a"]})
    assert r.status_code == 400 and "messageGroupId" in r.json()["error"], r.text
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "orders", "data": {"n": 3},
                                                       "messageGroupId": "customer-9"})
    assert r.status_code == 202, r.text
    wait_until(lambda: seen(host, 3) is not None, 10, "the admin event delivered")
    [sent] = [e for e in httpx.get(f"{host.url}/__steppe/emitted").json() if e.get("data") == {"n": 3}]
    assert sent["messageGroupId"] == "customer-9", sent
