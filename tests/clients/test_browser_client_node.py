"""Steppe's browser client (host/static/client.js, as the host serves it at /__steppe/client.js) run
unchanged under Node's WebSocket (global from Node 22, `--experimental-websocket` in Node 20) against real
hosts: item and group state, events, errors, tokens, and reconnecting to a host restarted on the same port.
A real Chromium loads the same file in the live-progress example's browser test."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import REPO, RunningHost, free_port, write_project

from . import PROJECT, NodeScript, node_websocket_args, op, ws_url


@pytest.fixture
def node() -> list[str]:
    return node_websocket_args()


async def test_served_client_is_the_module(start_host, tmp_path: Path) -> None:
    host = start_host(write_project(tmp_path, PROJECT))
    response = httpx.get(f"{host.url}/__steppe/client.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == (REPO / "host" / "static" / "client.js").read_bytes()
    assert b"export class Stream" in response.content


async def test_browser_client_item_group_events_and_errors(node, start_host, tmp_path: Path) -> None:
    host = start_host(write_project(tmp_path, PROJECT))
    async with httpx.AsyncClient(base_url=host.url, timeout=10) as http:
        await op(http, "py", "g", "a", op="set", data={"title": "first"})
        options = {"url": host.url, "item": ["todos", "g", "a"], "group": ["todos", "g"],
                   "events": ["ping", "note"], "denied": ["nope", "g"]}
        async with NodeScript(node, "steppe_client_check.mjs", options) as page:
            await page.expect(lambda line: line["t"] == "open", what="open")
            assert (await page.expect(lambda line: line["t"] == "error"))["code"] == "STREAM_NOT_FOUND"
            assert await page.change("item") == {"title": "first", "id": "a"}
            assert await page.change("group") == [{"title": "first", "id": "a"}]

            await op(http, "js", "g", "b", op="set", data={"title": "second"})
            await op(http, "py", "g", "a", op="set", data={"title": "first, edited"})
            await op(http, "js", "g", "b", op="set", data={"title": "second, edited"})
            assert await page.change("group") == [{"title": "first", "id": "a"}, {"title": "second", "id": "b"}]
            assert await page.change("group") == [
                {"title": "first, edited", "id": "a"}, {"title": "second", "id": "b"}]
            assert await page.change("group") == [  # updates keep each item's place
                {"title": "first, edited", "id": "a"}, {"title": "second, edited", "id": "b"}]
            assert await page.change("item") == {"title": "first, edited", "id": "a"}

            await op(http, "py", "g", "-", op="send", type="ping", data={"n": 1})
            await op(http, "js", "g", "a", op="send", type="note", data={"n": 2}, item=True)
            ping = await page.expect(lambda line: line["t"] == "event" and line["type"] == "ping")
            assert (ping["sub"], ping["data"]) == ("group", {"n": 1})
            notes = [await page.expect(lambda line: line["t"] == "event" and line["type"] == "note")
                     for _ in range(2)]
            assert sorted(n["sub"] for n in notes) == ["group", "item"]

            await op(http, "py", "g", "a", op="delete")
            assert await page.change("item") is None
            assert await page.change("group") == [{"title": "second, edited", "id": "b"}]

            # many updates within the same milliseconds: the last one wins (equal timestamps are not stale)
            response = await http.post("/py/burst/g", json={"n": 30, "ids": 1, "start": 0})
            assert response.status_code == 200
            last = None
            for _ in range(30):
                last = await page.change("group")
            assert last == [{"title": "second, edited", "id": "b"}, {"k": 29, "pad": "", "id": "i0"}]
            assert not [line for line in page.lines if line["t"] == "output"], page.lines


async def test_browser_client_token_in_protocol_or_query(node, start_host, tmp_path: Path) -> None:
    host = start_host(write_project(tmp_path, {
        **PROJECT,
        "steppe_auth.py": """
            from urllib.parse import parse_qs, urlsplit

            def authenticate(request):
                protocol = request["headers"].get("sec-websocket-protocol", "")
                token = protocol.split(",", 1)[1].strip() if protocol.startswith("Authorization,") else None
                token = token or parse_qs(urlsplit(request["url"]).query).get("authToken", [None])[0]
                if token != "t0ken":
                    raise PermissionError("bad token")
                return {"user": "ann"}
        """,
    }))
    for extra in ({}, {"tokenInQuery": True}):
        options = {"url": ws_url(host), "group": ["todos", "g"], "authToken": "t0ken", **extra}
        async with NodeScript(node, "steppe_client_check.mjs", options) as page:
            assert await page.change("group") == []
    async with NodeScript(node, "steppe_client_check.mjs", {"url": ws_url(host), "group": ["todos", "g"],
                                                            "authToken": "wrong"}) as page:
        with pytest.raises(AssertionError):  # refused with 401, again and again: it never opens
            await page.expect(lambda line: line["t"] in ("open", "change"), timeout=1.5)


async def test_browser_client_rejoins_after_the_host_restarts(node, tmp_path: Path) -> None:
    root = write_project(tmp_path, PROJECT)
    port = free_port()
    hosts = [RunningHost(root, [], None, port=port)]
    try:
        await hosts[0].ready()
        async with httpx.AsyncClient(base_url=hosts[0].url, timeout=10) as http:
            await op(http, "py", "keep", "x", op="set", data={"v": 1})
            options = {"url": hosts[0].url, "item": ["todos", "keep", "x"], "group": ["todos", "keep"]}
            async with NodeScript(node, "steppe_client_check.mjs", options) as page:
                assert (await page.expect(lambda line: line["t"] == "open"))["connections"] == 1
                assert await page.change("group") == [{"v": 1, "id": "x"}]
                assert await page.change("item") == {"v": 1, "id": "x"}
                hosts[0].stop()
                await page.expect(lambda line: line["t"] == "closed", what="closed")
                hosts.append(RunningHost(root, [], None, port=port))
                await hosts[1].ready()
                opened = await page.expect(lambda line: line["t"] == "open", timeout=20, what="reopen")
                assert opened["connections"] == 2
                assert await page.change("group") == [{"v": 1, "id": "x"}]  # the sync from SQLite
                assert await page.change("item") == {"v": 1, "id": "x"}
                await op(http, "js", "keep", "x", op="set", data={"v": 2})
                assert await page.change("item") == {"v": 2, "id": "x"}
                assert await page.change("group") == [{"v": 2, "id": "x"}]
    finally:
        for host in hosts:
            host.stop()
