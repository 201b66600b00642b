"""A project with a `motia.config.ts` shaped like Motia 0.17's playground: Workbench plugins from absent
`@motiadev/*` packages, `defineConfig`, import.meta, a local plugin (registerApi + its own steps folder)
and `streamAuth` (authenticate + contextSchema) guarding a stream whose canAccess reads the auth context."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from conftest import REPO, RunningHost, wait_until, write_project

ZOD4 = REPO / "tests" / "compat" / "fixtures" / "zod4" / "node_modules"

pytestmark = pytest.mark.skipif(not (ZOD4 / "zod").is_dir(), reason="run ./scripts/setup-tests (zod 4 fixture)")

FILES = {
    "package.json": '{"name": "plugin-app", "type": "module", "dependencies": {"zod": "^4.1.13"}}',
    "motia.config.ts": """
        import path from 'node:path'
        import { defineConfig, type MotiaPluginContext, type StreamAuthRequest } from '@motiadev/core'
        import logsPlugin from '@motiadev/plugin-logs/plugin'
        import statesPlugin from '@motiadev/plugin-states/plugin'
        import { z } from 'zod'

        const here = path.dirname(new URL(import.meta.url).pathname)

        function localPlugin(motia: MotiaPluginContext) {
          motia.registerApi({ method: 'GET', path: '/__plugin/hello' }, async (req, ctx) => ({
            status: 200,
            body: { hello: 'from a plugin', query: req.queryParams, hasLogger: typeof ctx.logger.info },
          }))
          return {
            dirname: path.join(here, 'plugins'),
            steps: ['**/*.step.ts'],
            workbench: [{ componentName: 'Panel', packageName: '~/plugins/panel', label: 'Panel' }],
          }
        }

        const authContext = z.object({ userId: z.string(), role: z.enum(['reader', 'writer']) })
        const tokens: Record<string, unknown> = {
          'token-reader': { userId: 'rita', role: 'reader' },
          'token-writer': { userId: 'walt', role: 'writer' },
          'token-malformed': { userId: 42 },
        }

        export default defineConfig({
          plugins: [logsPlugin, statesPlugin, localPlugin],
          streamAuth: {
            contextSchema: z.toJSONSchema(authContext),
            authenticate: async (request: StreamAuthRequest) => {
              const protocol = request.headers['sec-websocket-protocol'] as string | undefined
              const token = protocol?.includes('Authorization')
                ? protocol.split(',')[1]?.trim()
                : new URL(request.url!).searchParams.get('authToken') ?? undefined
              if (!token) return null
              if (!(token in tokens)) throw new Error('unknown token')
              return tokens[token]
            },
          },
        })
    """,
    "plugins/api/plugin-echo.step.ts": """
        export const config = { type: 'api', name: 'PluginEcho', method: 'POST', path: '/__plugin/echo', emits: [] }
        export const handler = async (req: { body: unknown }) => ({ status: 200, body: { echo: req.body } })
    """,
    "src/board/board.stream.ts": """
        import { z } from 'zod'

        export const config = {
          name: 'board',
          schema: z.object({ text: z.string() }),
          baseConfig: { storageType: 'default' },
          canAccess: (sub: { groupId: string }, auth: { role?: string } | null) =>
            Boolean(auth) && (sub.groupId === 'public' || auth!.role === 'writer'),
        }
    """,
    "src/board/post.step.ts": """
        export const config = { type: 'api', name: 'PostToBoard', method: 'POST', path: '/board/:group', emits: [] }
        export const handler = async (req: any, { streams }: any) => {
          const item = await streams.board.set(req.pathParams.group, req.body.id, { text: req.body.text })
          return { status: 201, body: item }
        }
    """,
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    root = write_project(tmp_path_factory.mktemp("motiacfg") / "plugin-app", FILES)
    (root / "node_modules").symlink_to(ZOD4)
    running = RunningHost(root, [], {"STEPPE_BUS": "memory", "STEPPE_STATE": "memory",
                                     "STEPPE_STREAMS": "memory"}).wait_ready()
    yield running
    running.stop()


def test_register_api_routes_and_plugin_steps_are_served(host: RunningHost) -> None:
    hello = httpx.get(f"{host.url}/__plugin/hello", params={"x": "1"})
    assert hello.status_code == 200, host.logs()
    assert hello.json() == {"hello": "from a plugin", "query": {"x": "1"}, "hasLogger": "function"}
    echo = httpx.post(f"{host.url}/__plugin/echo", json={"a": 1})
    assert echo.status_code == 200, host.logs()
    assert echo.json() == {"echo": {"a": 1}}
    names = {s["name"]: s["status"] for s in httpx.get(f"{host.url}/__steppe/steps").json()["steps"]}
    assert names == {"GET /__plugin/hello": "ok", "PluginEcho": "ok", "PostToBoard": "ok"}, names


async def _join(ws: ClientConnection, group: str) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "join", "data": {"streamName": "board", "groupId": group,
                                                          "subscriptionId": f"sub-{group}"}}))
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def test_stream_auth_from_motia_config_admits_and_refuses(host: RunningHost) -> None:
    async with httpx.AsyncClient() as http:
        assert (await http.post(f"{host.url}/board/public", json={"id": "n1", "text": "hi"})).status_code == 201
        assert (await http.post(f"{host.url}/board/staff", json={"id": "n2", "text": "psst"})).status_code == 201
    ws_url = host.url.replace("http", "ws")

    async with connect(ws_url, subprotocols=["Authorization", "token-reader"]) as ws:  # type: ignore[list-item]
        synced = await _join(ws, "public")
        assert synced["event"] == {"type": "sync", "data": [{"id": "n1", "text": "hi"}]}
        denied = await _join(ws, "staff")
        assert denied["event"]["event"]["data"]["code"] == "STREAM_ACCESS_DENIED"

    async with connect(f"{ws_url}/?authToken=token-writer") as ws:
        assert (await _join(ws, "staff"))["event"]["type"] == "sync"

    async with connect(ws_url) as ws:  # no token: authenticate returns null, canAccess decides
        assert (await _join(ws, "public"))["event"]["event"]["data"]["code"] == "STREAM_ACCESS_DENIED"

    for bad in ("token-unknown", "token-malformed"):  # a throwing hook, a context not matching contextSchema
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{ws_url}/?authToken={bad}"):
                pass
        assert refused.value.response.status_code == 401


async def test_a_steppe_auth_file_wins_over_motia_config_whose_plugins_still_load(tmp_path) -> None:  # noqa: ANN001
    root = write_project(tmp_path / "both", {
        "motia.config.ts": """
            export default {
              plugins: [(motia: any) => {
                const pong = async () => ({ status: 200, body: 'pong' })
                motia.registerApi({ method: 'POST', path: '/__plugin/ping' }, pong)
                return { workbench: [] }
              }],
              streamAuth: { contextSchema: {}, authenticate: async () => { throw new Error('motia.config refuses') } },
            }
        """,
        "steppe.auth.ts": """
            export const authenticate = async () => ({ userId: 'from-steppe-auth' })
        """,
        "steps/board.stream.ts": """
            export const config = { name: 'board', schema: { type: 'object' } }
        """,
    })
    running = RunningHost(root, [], {"STEPPE_BUS": "memory"})
    try:
        await running.ready()
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{running.url}/__plugin/ping")
        assert (r.status_code, r.text) == (200, "pong"), running.logs()
        async with connect(running.url.replace("http", "ws")) as ws:  # steppe.auth.ts admits: not refused
            assert (await _join(ws, "g"))["event"] == {"type": "sync", "data": []}
    finally:
        running.stop()


async def test_a_motia_config_that_cannot_load_refuses_sockets_instead_of_opening_them(tmp_path) -> None:  # noqa: ANN001
    root = write_project(tmp_path / "broken", {
        "motia.config.ts": """
            import { notInstalled } from 'some-package-nobody-installed'

            export default { streamAuth: { contextSchema: {}, authenticate: async () => notInstalled() } }
        """,
        "steps/board.stream.ts": """
            export const config = { name: 'board', schema: { type: 'object' } }
        """,
    })
    running = RunningHost(root, [], {"STEPPE_BUS": "memory"})
    try:
        await running.ready()
        assert "failed to load motia.config.ts" in running.logs()
        with pytest.raises(InvalidStatus) as refused:
            async with connect(running.url.replace("http", "ws")):
                pass
        assert refused.value.response.status_code == 401
    finally:
        running.stop()


def test_dev_reload_picks_up_motia_config_and_plugin_folder_edits(host: RunningHost) -> None:
    config = host.root / "motia.config.ts"
    original = config.read_text()
    edited = host.root / "motia.config.ts.new"  # written aside and renamed over, as editors save
    edited.write_text(original.replace("hello: 'from a plugin'", "hello: 'edited plugin'")
                      .replace("path: '/__plugin/hello'", "path: '/__plugin/hi'"))
    edited.replace(config)

    def route_moved() -> bool:
        return httpx.get(f"{host.url}/__plugin/hi").status_code == 200

    wait_until(route_moved, 10, "the edited registerApi route")
    assert httpx.get(f"{host.url}/__plugin/hi").json()["hello"] == "edited plugin"
    assert httpx.get(f"{host.url}/__plugin/hello").status_code == 404
    assert httpx.post(f"{host.url}/__plugin/echo", json={"b": 2}).json() == {"echo": {"b": 2}}  # plugin step kept

    step = host.root / "plugins" / "api" / "plugin-echo.step.ts"
    step.write_text(step.read_text().replace("{ echo: req.body }", "{ echoed: req.body }"))
    wait_until(lambda: "echoed" in httpx.post(f"{host.url}/__plugin/echo", json={}).text, 10,
               "the edited plugin step")
