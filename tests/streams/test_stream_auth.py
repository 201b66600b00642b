"""Stream authentication end to end, in each language: a project's auth hook file and a stream's canAccess
run in their runner, behind a real `steppe dev` host, with real `websockets` clients.

Each project has an auth hook accepting the token "good" (auth context {"userId": "u1"}) and refusing
any other, a `notes` stream whose canAccess allows only the group named by the auth context's userId,
and an API step `POST /notes/:user` writing into that stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from conftest import RunningHost, need, write_project

PYTHON = {
    "steppe_auth.py": """
        # The stream auth hook: the token comes as `Sec-WebSocket-Protocol: Authorization,<token>` or
        # `?authToken=<token>`; what this returns is the socket's auth context; raising refuses it (401).
        from urllib.parse import parse_qs, urlsplit


        def authenticate(request):
            token = None
            protocols = [p.strip() for p in request["headers"].get("sec-websocket-protocol", "").split(",")]
            if len(protocols) == 2 and protocols[0] == "Authorization":
                token = protocols[1]
            token = token or parse_qs(urlsplit(request["url"]).query).get("authToken", [None])[0]
            if token != "good":
                raise PermissionError("invalid token")
            return {"userId": "u1", "via": "python"}
        """,
    "steps/notes_stream.py": """
        config = {"name": "notes", "schema": {"type": "object"}}


        def can_access(subscription, auth_context):  # a module-level function works as well as config's
            return auth_context is not None and subscription["groupId"] == auth_context["userId"]
        """,
    "steps/add_note_step.py": """
        config = {"type": "api", "name": "AddNote", "path": "/notes/:user", "method": "POST", "emits": []}


        async def handler(req, ctx):
            note = await ctx.streams.notes.set(req["pathParams"]["user"], req["body"]["id"],
                                               {"text": req["body"]["text"]})
            return {"status": 201, "body": note}
        """,
}

NODE = {
    "steppe.auth.ts": """
        // The stream auth hook (see steppe_auth.py in the Python project for the contract).
        export async function authenticate(request: { headers: Record<string, string>; url: string }) {
          const protocols = (request.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim())
          const token = protocols.length === 2 && protocols[0] === 'Authorization'
            ? protocols[1]
            : new URL(request.url).searchParams.get('authToken')
          if (token !== 'good') throw new Error('invalid token')
          return { userId: 'u1', via: 'node' }
        }
        """,
    "steps/notes.stream.ts": """
        // Motia's form: canAccess in the stream's config.
        export const config = {
          name: 'notes',
          schema: { type: 'object' },
          canAccess: (subscription: { groupId: string }, authContext: { userId: string } | null) =>
            authContext !== null && subscription.groupId === authContext.userId,
        }
        """,
    "steps/add-note.step.ts": """
        export const config = { type: 'api', name: 'AddNote', path: '/notes/:user', method: 'POST', emits: [] }
        export const handler = async (req: any, { streams }: any) => {
          const note = await streams.notes.set(req.pathParams.user, req.body.id, { text: req.body.text })
          return { status: 201, body: note }
        }
        """,
}

RUBY = {
    "steppe_auth.rb": """
        # The stream auth hook (see steppe_auth.py in the Python project for the contract).
        require 'uri'

        def authenticate(request)
          protocols = (request['headers']['sec-websocket-protocol'] || '').split(',').map(&:strip)
          token = protocols[1] if protocols.size == 2 && protocols[0] == 'Authorization'
          token ||= URI.decode_www_form(URI(request['url']).query || '').to_h['authToken']
          raise 'invalid token' unless token == 'good'

          { userId: 'u1', via: 'ruby' }
        end
        """,
    "steps/notes_stream.rb": """
        # Motia's form: canAccess in the stream's config.
        def config
          {
            name: 'notes',
            schema: { type: 'object' },
            canAccess: lambda do |subscription, auth_context|
              !auth_context.nil? && subscription['groupId'] == auth_context['userId']
            end
          }
        end
        """,
    "steps/add_note_step.rb": """
        def config
          { type: 'api', name: 'AddNote', path: '/notes/:user', method: 'POST', emits: [] }
        end

        def handler(req, ctx)
          note = ctx.streams.notes.set(req['pathParams']['user'], req['body']['id'], { text: req['body']['text'] })
          { status: 201, body: note }
        end
        """,
}

PROJECTS = {"python": PYTHON, "node": NODE, "ruby": RUBY}


@pytest.fixture(scope="module", params=list(PROJECTS))
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    language = request.param
    if language == "ruby":
        need("ruby")
    root = write_project(tmp_path_factory.mktemp(f"auth-{language}"), PROJECTS[language])
    running = RunningHost(root, [], None)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def ws_url(host: RunningHost, path: str = "/") -> str:
    return host.url.replace("http://", "ws://") + path


async def recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def join(ws: ClientConnection, stream: str, group: str, id: str | None = None) -> None:
    data = {"streamName": stream, "groupId": group, "subscriptionId": f"{stream}/{group}/{id}"}
    if id is not None:
        data["id"] = id
    await ws.send(json.dumps({"type": "join", "data": data}))


def error_code(message: dict[str, Any]) -> str:
    assert message["event"]["type"] == "event" and message["event"]["event"]["type"] == "error", message
    return str(message["event"]["event"]["data"]["code"])


async def add_note(host: RunningHost, user: str, id: str, text: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{host.url}/notes/{user}", json={"id": id, "text": text}, timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json())


def language_of(host: RunningHost) -> str:
    steps = httpx.get(f"{host.url}/__steppe/steps").json()["steps"]
    return str(steps[0]["language"])


async def test_token_in_the_subprotocol_is_accepted(host: RunningHost) -> None:
    await add_note(host, "u1", "n1", "mine")
    async with connect(ws_url(host), subprotocols=["Authorization", "good"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "Authorization"  # the server picks the marker, never echoes the token
        await join(ws, "notes", "u1", "n1")
        sync = await recv(ws)
        assert (sync["streamName"], sync["groupId"], sync["id"]) == ("notes", "u1", "n1")
        assert sync["event"] == {"type": "sync", "data": {"text": "mine", "id": "n1"}}


async def test_token_in_the_query_is_accepted(host: RunningHost) -> None:
    await add_note(host, "u1", "n2", "also mine")
    async with connect(ws_url(host, "/any/path?authToken=good")) as ws:
        assert ws.subprotocol is None
        await join(ws, "notes", "u1")
        sync = await recv(ws)
        assert sync["event"]["type"] == "sync" and "id" not in sync
        assert {"text": "also mine", "id": "n2"} in sync["event"]["data"]


@pytest.mark.parametrize("how", ["bad-subprotocol", "bad-query", "missing", "empty-query"])
async def test_a_bad_or_missing_token_is_refused_with_401(host: RunningHost, how: str) -> None:
    url, protocols = {
        "bad-subprotocol": (ws_url(host), ["Authorization", "bad"]),
        "bad-query": (ws_url(host, "/?authToken=bad"), None),
        "missing": (ws_url(host), None),
        "empty-query": (ws_url(host, "/?authToken="), None),
    }[how]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, subprotocols=protocols, open_timeout=10):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body) == {"error": "Unauthorized"}


@pytest.mark.parametrize("where", ["subprotocol", "query"])
async def test_a_long_token_is_answered_not_left_hanging(host: RunningHost, where: str) -> None:
    """Seen: a handshake with a request line or header over 8 KB (a long JWT) got no answer at all: the
    WebSocket library's own line limit refused it silently and the connection closed ~36 s later. Lines are
    now bounded by the host's head limit (max_headers), as for HTTP."""
    token = "t" * 20_000
    url, protocols = ((ws_url(host), ["Authorization", token]) if where == "subprotocol"
                      else (ws_url(host, f"/?authToken={token}"), None))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, subprotocols=protocols, open_timeout=5,  # type: ignore[arg-type]
                           max_size=None):
            pass
    assert refused.value.response.status_code == 401


async def test_a_refused_socket_is_not_logged_as_an_error(host: RunningHost) -> None:
    """A refusal is the hook doing its job: the host log must not report it as a server error."""
    before = host.logs()
    for _ in range(2):
        with pytest.raises(InvalidStatus):
            async with connect(ws_url(host, "/?authToken=bad"), open_timeout=10):
                pass
    async with connect(ws_url(host, "/?authToken=good")) as ws:  # the host is fine, and has logged by now
        await join(ws, "notes", "u1")
        await recv(ws)
    added = host.logs()[len(before):]
    assert "ERROR" not in added, added


async def test_can_access_allows_the_users_own_group_and_denies_others(host: RunningHost) -> None:
    async with connect(ws_url(host, "/?authToken=good")) as ws:
        await join(ws, "notes", "u2")  # someone else's group
        denied = await recv(ws)
        assert error_code(denied) == "STREAM_ACCESS_DENIED"
        assert (denied["streamName"], denied["groupId"]) == ("notes", "u2")
        await join(ws, "notes", "u2", "n1")  # someone else's item
        denied = await recv(ws)
        assert error_code(denied) == "STREAM_ACCESS_DENIED" and denied["id"] == "n1"

        await join(ws, "notes", "u1")  # own group: a sync, then live changes
        assert (await recv(ws))["event"]["type"] == "sync"
        await add_note(host, "u2", "x", "not for u1")  # nothing reaches the denied subscriptions
        created = await add_note(host, "u1", "live", "hello")
        message = await recv(ws)
        assert (message["groupId"], message["id"]) == ("u1", "live")
        assert message["event"] == {"type": "create", "data": created}


async def test_unknown_stream_gets_stream_not_found(host: RunningHost) -> None:
    async with connect(ws_url(host), subprotocols=["Authorization", "good"]) as ws:  # type: ignore[list-item]
        await join(ws, "nope", "u1")
        missing = await recv(ws)
        assert error_code(missing) == "STREAM_NOT_FOUND"
        assert (missing["streamName"], missing["groupId"]) == ("nope", "u1")
        await join(ws, "notes", "u1")  # the socket is still usable
        assert (await recv(ws))["event"]["type"] == "sync"


async def test_hooks_run_in_the_long_lived_runner(host: RunningHost) -> None:
    language = language_of(host)
    pid = host.runner_pid(language)
    for _ in range(3):
        async with connect(ws_url(host, "/?authToken=good")) as ws:
            await join(ws, "notes", "u1")
            assert (await recv(ws))["event"]["type"] == "sync"
            await join(ws, "notes", "u9")
            assert error_code(await recv(ws)) == "STREAM_ACCESS_DENIED"
    assert host.runner_pid(language) == pid  # no process per check
