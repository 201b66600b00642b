"""Motia's published Node stream client (@motiadev/stream-client-node, installed from npm by
runners/node/setup.sh into tests/js) against a real Steppe host, unchanged: it connects, joins an item and
a group, and gets the sync, the changes and the custom events the project's Python and JS steps make."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import IN_CI, need, write_project

from . import JS, PROJECT, NodeScript, op, ws_url

MOTIA_CLIENT = JS / "node_modules" / "@motiadev" / "stream-client-node" / "package.json"


@pytest.fixture
def node() -> list[str]:
    path = need("node")
    if not MOTIA_CLIENT.exists():
        message = "@motiadev/stream-client-node is not installed: run ./scripts/setup-tests"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return [path]


async def test_motia_node_client_gets_sync_changes_and_events(node, start_host, tmp_path: Path) -> None:
    host = start_host(write_project(tmp_path, PROJECT))
    async with httpx.AsyncClient(base_url=host.url, timeout=10) as http:
        await op(http, "py", "g", "a", op="set", data={"title": "first"})
        await op(http, "js", "g", "b", op="set", data={"title": "second"})
        options = {"url": ws_url(host), "item": ["todos", "g", "a"], "group": ["todos", "g"],
                   "events": ["ping", "note"]}
        async with NodeScript(node, "motia_client_check.mjs", options) as motia:
            await motia.expect(lambda line: line["t"] == "open", what="open")
            assert await motia.change("item") == {"title": "first", "id": "a"}
            assert await motia.change("group") == [{"title": "first", "id": "a"}, {"title": "second", "id": "b"}]

            await op(http, "js", "g", "a", op="set", data={"title": "first, edited"})
            assert await motia.change("item") == {"title": "first, edited", "id": "a"}
            assert await motia.change("group") == [
                {"title": "first, edited", "id": "a"}, {"title": "second", "id": "b"}]

            await op(http, "py", "g", "c", op="set", data={"title": "third"})
            assert [i["id"] for i in await motia.change("group")] == ["a", "b", "c"]

            await op(http, "py", "g", "-", op="send", type="ping", data={"n": 1})
            await op(http, "js", "g", "a", op="send", type="note", data={"n": 2}, item=True)
            ping = await motia.expect(lambda line: line["t"] == "event" and line["type"] == "ping")
            assert (ping["sub"], ping["data"]) == ("group", {"n": 1})
            notes = [await motia.expect(lambda line: line["t"] == "event" and line["type"] == "note")
                     for _ in range(2)]
            assert sorted(n["sub"] for n in notes) == ["group", "item"] and notes[0]["data"] == {"n": 2}

            await op(http, "js", "g", "a", op="delete")
            assert await motia.change("item") is None
            assert [i["id"] for i in await motia.change("group")] == ["b", "c"]

            await op(http, "py", "g", "b", op="delete")
            assert await motia.change("group") == [{"title": "third", "id": "c"}]
            assert not [line for line in motia.lines if line["t"] == "output"], motia.lines


async def test_motia_node_client_with_an_auth_token(node, start_host, tmp_path: Path) -> None:
    host = start_host(write_project(tmp_path, {
        **PROJECT,
        "steppe_auth.js": """
            export const authenticate = async (request) => {
              const protocol = request.headers['sec-websocket-protocol'] || ''
              if (protocol !== 'Authorization, open-sesame' && protocol !== 'Authorization,open-sesame') {
                throw new Error('bad token')
              }
              return { user: 'ann' }
            }
        """,
    }))
    async with httpx.AsyncClient(base_url=host.url, timeout=10) as http:
        await op(http, "py", "g", "a", op="set", data={"v": 1})
        options = {"url": ws_url(host), "group": ["todos", "g"], "authToken": "open-sesame"}
        async with NodeScript(node, "motia_client_check.mjs", options) as motia:
            assert await motia.change("group") == [{"v": 1, "id": "a"}]
            await op(http, "js", "g", "a", op="set", data={"v": 2})
            assert await motia.change("group") == [{"v": 2, "id": "a"}]


async def test_motia_item_client_keeps_updates_made_in_the_same_millisecond(
        node, start_host, tmp_path: Path) -> None:
    # Motia's item subscription drops a message whose timestamp is not greater than the last one it
    # applied (`if (message.timestamp <= this.lastEventTimestamp) return`), and its group subscription an
    # update not newer than the item's last; so of two changes to an item stamped with the same
    # millisecond, the second is lost for good unless the host's timestamps strictly increase.
    host = start_host(write_project(tmp_path, PROJECT))
    rounds, burst = 20, 5
    async with httpx.AsyncClient(base_url=host.url, timeout=10) as http:
        await op(http, "py", "fast", "i0", op="set", data={"k": -1})
        # the group "mark" is a barrier: its change in round r comes after every message of the burst
        options = {"url": ws_url(host), "item": ["todos", "fast", "i0"], "group": ["todos", "mark"]}
        async with NodeScript(node, "motia_client_check.mjs", options) as motia:
            assert await motia.change("item") == {"k": -1, "id": "i0"}
            assert await motia.change("group") == []
            stale = []
            for r in range(rounds):
                response = await http.post("/py/burst/fast", json={"n": burst, "ids": 1, "start": r * burst})
                assert response.status_code == 200
                await op(http, "py", "mark", f"m{r}", op="set", data={})
                assert len(await motia.change("group")) == r + 1
                item = [line for line in motia.lines if line["t"] == "change" and line["sub"] == "item"][-1]
                if item["state"]["k"] != r * burst + burst - 1:
                    stale.append((r * burst + burst - 1, item["state"]["k"]))
            assert not stale, f"(last set, what Motia's item client shows) in {len(stale)}/{rounds} rounds: {stale}"
