"""Tests of the stream clients; what they share: a project whose API steps write the `todos` stream."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx

from conftest import REPO, RunningHost, need

JS = REPO / "tests" / "js"

# A project whose API steps write the `todos` stream, in Python and in JS:
#   POST /{py,js}/ops/:group/:id  {"op": "set", "data"} | {"op": "delete"} | {"op": "send", "type", "data", "item"?}
#   POST /py/burst/:group  {"n", "size", "ids", "start"}: n sets of a padded item, ids cycling
#   POST /py/stamp/:group/:id  {"n"}: sets {"n", "sentAt"} with the wall-clock time right before the set
PROJECT = {
    "steps/todos_stream.py": """
        config = {"name": "todos", "schema": {"type": "object"}}
    """,
    "steps/ops_step.py": """
        config = {"type": "api", "name": "PyOps", "path": "/py/ops/:group/:id", "method": "POST", "emits": []}

        async def handler(req, context):
            group, id, body = req["pathParams"]["group"], req["pathParams"]["id"], req["body"]
            todos = context.streams.todos
            if body["op"] == "set":
                result = await todos.set(group, id, body["data"])
            elif body["op"] == "delete":
                result = await todos.delete(group, id)
            else:
                channel = {"groupId": group, "id": id} if body.get("item") else {"groupId": group}
                result = await todos.send(channel, {"type": body["type"], "data": body["data"]})
            return {"status": 200, "body": {"result": result}}
    """,
    "steps/ops.step.js": """
        export const config = { type: 'api', name: 'JsOps', path: '/js/ops/:group/:id', method: 'POST', emits: [] }

        export const handler = async (req, { streams }) => {
          const { group, id } = req.pathParams
          const body = req.body
          let result
          if (body.op === 'set') result = await streams.todos.set(group, id, body.data)
          else if (body.op === 'delete') result = await streams.todos.delete(group, id)
          else result = await streams.todos.send(body.item ? { groupId: group, id } : { groupId: group },
                                                 { type: body.type, data: body.data })
          return { status: 200, body: { result: result ?? null } }
        }
    """,
    "steps/burst_step.py": """
        config = {"type": "api", "name": "Burst", "path": "/py/burst/:group", "method": "POST", "emits": []}

        async def handler(req, context):
            group, body = req["pathParams"]["group"], req["body"]
            pad = "x" * body.get("size", 0)
            for k in range(body["start"], body["start"] + body["n"]):
                await context.streams.todos.set(group, f"i{k % body['ids']}", {"k": k, "pad": pad})
            return {"status": 200, "body": {"ok": True}}
    """,
    "steps/stamp_step.py": """
        import time

        config = {"type": "api", "name": "Stamp", "path": "/py/stamp/:group/:id", "method": "POST", "emits": []}

        async def handler(req, context):
            group, id = req["pathParams"]["group"], req["pathParams"]["id"]
            for n in range(req["body"]["n"], req["body"]["n"] + req["body"].get("count", 1)):
                await context.streams.todos.set(group, id, {"n": n, "sentAt": time.time()})
            return {"status": 200, "body": {"ok": True}}
    """,
}


def ws_url(host: RunningHost | str) -> str:
    base = host if isinstance(host, str) else host.url
    return base.replace("http://", "ws://") + "/"


async def op(http: httpx.AsyncClient, lang: str, group: str, id: str, **body: Any) -> Any:
    response = await http.post(f"/{lang}/ops/{group}/{id}", json=body)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def node_websocket_args() -> list[str]:
    """`node` plus the flag that gives it a global WebSocket (built in from Node 22; a flag in Node 20)."""
    node = need("node")
    has = subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"]).returncode == 0
    return [node] if has else [node, "--experimental-websocket"]


class NodeScript:
    """A tests/js script printing JSON lines; `expect` waits for the next line matching a predicate."""

    def __init__(self, node: list[str], script: str, options: dict[str, Any]) -> None:
        self.args = [*node, str(JS / script), json.dumps(options)]
        self.lines: list[dict[str, Any]] = []
        self._taken: set[int] = set()
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> NodeScript:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, cwd=JS, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()  # the script exits when its stdin closes
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    async def expect(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10,
                     what: str = "a line") -> dict[str, Any]:
        """The first line not taken yet that satisfies `predicate` (waiting for it); takes it."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            for index, line in enumerate(self.lines):
                if index not in self._taken and predicate(line):
                    self._taken.add(index)
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} from {self.args[-2]} in {timeout}s; got {self.lines}")
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            except TimeoutError:
                continue
            if not raw:
                raise AssertionError(f"{self.args[-2]} exited ({await self.proc.wait()}); got {self.lines}")
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                self.lines.append({"t": "output", "text": raw.decode(errors="replace").rstrip()})

    async def change(self, sub: str, timeout: float = 10) -> Any:
        """The state in the next change line of subscription `sub`."""
        line = await self.expect(lambda ln: ln.get("t") == "change" and ln.get("sub") == sub, timeout,
                                 f"change of {sub}")
        return line["state"]
