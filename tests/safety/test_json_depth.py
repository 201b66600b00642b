"""One JSON nesting limit (512 levels for a value) in every runner: deeper input, host answers and
handler data are refused with an error naming the limit, and the runner keeps serving. Seen: 252-1,024
levels answered 500 `Recursion limit reached`; a Node emit past 1,024 levels left its call hanging,
and a very deep line ended the Ruby runner (SystemStackError)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import REPO, RunningHost, need, write_project

_spec = importlib.util.spec_from_file_location("steppe_protocol_kit_client", REPO / "protocol" / "kit" / "client.py")
assert _spec and _spec.loader
kit = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = kit
    _spec.loader.exec_module(kit)

pytestmark = pytest.mark.timeout(120)

LIMIT_TEXT = "nested deeper than 512 levels"

STEPS = {
    "python": ("steps/deep_step.py", """
        config = {"type": "api", "name": "PyDeep", "path": "/deep/py/:op", "method": "GET", "emits": ["deep.topic"]}

        def deep(n):
            v = 1
            for _ in range(n):
                v = [v]
            return v

        def handler(req, context):
            n, op = int(req["queryParams"]["n"]), req["pathParams"]["op"]
            if op == "emit":
                context.emit({"topic": "deep.topic", "data": deep(n)})
            if op == "state":
                context.state.set("g", "k", deep(n))
            if op == "get":
                return {"status": 200, "body": {"got": str(context.state.get("g", "deep"))[:5]}}
            if op == "result":
                return {"status": 200, "body": deep(n)}
            return {"status": 200, "body": {"depth": len(str(req.get("body")))}}
    """),
    "node": ("steps/deep.step.js", """
        exports.config = { type: 'api', name: 'JsDeep', path: '/deep/js/:op', method: 'GET', emits: ['deep.topic'] }
        function deep(n) { let v = 1; for (let i = 0; i < n; i++) v = [v]; return v }
        exports.handler = async (req, ctx) => {
          const n = Number(req.queryParams.n), op = req.pathParams.op
          if (op === 'emit') await ctx.emit({ topic: 'deep.topic', data: deep(n) })
          if (op === 'state') await ctx.state.set('g', 'k', deep(n))
          if (op === 'get') return { status: 200, body: { got: String(await ctx.state.get('g', 'deep')).slice(0, 5) } }
          if (op === 'result') return { status: 200, body: deep(n) }
          return { status: 200, body: { depth: JSON.stringify(req.body).length } }
        }
    """),
    "ruby": ("steps/deep_step.rb", """
        def config
          { type: 'api', name: 'RbDeep', path: '/deep/rb/:op', method: 'GET', emits: ['deep.topic'] }
        end

        def deep(n)
          v = 1
          n.times { v = [v] }
          v
        end

        def handler(req, context)
          n = req.query_params['n'].to_i
          op = req.path_params['op']
          context.emit({ topic: 'deep.topic', data: deep(n) }) if op == 'emit'
          context.state.set('g', 'k', deep(n)) if op == 'state'
          return { status: 200, body: { got: context.state.get('g', 'deep').to_s[0, 5] } } if op == 'get'
          return { status: 200, body: deep(n) } if op == 'result'

          { status: 200, body: { depth: req.body.to_s.length } }
        end
    """),
}


def deep(n: int) -> Any:
    v: Any = 1
    for _ in range(n):
        v = [v]
    return v


def _command(language: str) -> list[str]:
    if language == "python":
        return [sys.executable, str(REPO / "runners" / "python" / "runner.py")]
    if language == "node":
        return [need("node"), str(REPO / "runners" / "node" / "runner.js")]
    return [need("ruby"), str(REPO / "runners" / "ruby" / "runner.rb")]


def _api(op: str, n: int, body: Any = None) -> dict[str, Any]:
    return {"body": body, "headers": {}, "pathParams": {"op": op}, "queryParams": {"n": str(n)}, "rawBody": ""}


@pytest.mark.parametrize("language", ["python", "node", "ruby"])
async def test_runner_refuses_deep_input_answers_and_data_naming_the_limit(tmp_path: Path, language: str):
    command = _command(language)
    rel, text = STEPS[language]
    root = write_project(tmp_path, {rel: text})

    async def host_call(method: str, params: dict[str, Any]) -> Any:
        if method == "state.get" and params.get("key") == "deep":
            return deep(600)
        return None

    client: Any = kit.RunnerClient(command, cwd=str(root), on_call=host_call)
    await client.start()
    try:
        await client.request("initialize", {"protocolVersion": 1, "projectRoot": str(root), "host": "steppe/test"})
        await client.request("load", {"path": str(root / rel), "kind": "step"})

        def invoke_params(op: str, n: int, body: Any = None) -> dict[str, Any]:
            return {"path": str(root / rel), "step": "Deep", "trigger": "api", "input": _api(op, n, body),
                    "traceId": "t", "flows": []}

        # within the limit: served
        ok = await client.request("invoke", invoke_params("echo", 1, deep(500)))
        assert ok["status"] == 200
        # a deep invoke input: InvalidParams naming the limit
        for n in (600, 900):  # 900: the test's own json.dumps stops near 1,000
            with pytest.raises(kit.RunnerError) as refused:
                await client.request("invoke", invoke_params("echo", 1, deep(n)))
            assert refused.value.code == -32602 and LIMIT_TEXT in str(refused.value), refused.value.error
        # far past any parser's own limit or stack: still answered, the runner still up
        rid = 9_000_001
        fut = asyncio.get_running_loop().create_future()
        client._pending[rid] = fut
        params = invoke_params("echo", 1)
        del params["input"]
        head = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "invoke", "params": params})[:-2]
        n = 200_000
        client.send_raw(head.encode() + b', "input": ' + b"[" * n + b"]" * n + b"}}\n")
        with pytest.raises(kit.RunnerError) as refused:
            await asyncio.wait_for(fut, 10)
        assert LIMIT_TEXT in str(refused.value)
        # a deep answer to a host call fails that call in the handler, with the limit named
        with pytest.raises(kit.RunnerError) as refused:
            await client.request("invoke", invoke_params("get", 1))
        assert LIMIT_TEXT in str(refused.value), refused.value.error
        # deep data from the handler: emit, a state value, the result
        for op in ("emit", "state", "result"):
            for n in (600, 3000):
                with pytest.raises(kit.RunnerError) as refused:
                    await client.request("invoke", invoke_params(op, n))
                assert LIMIT_TEXT in str(refused.value), (op, n, refused.value.error)
        assert await client.request("ping", {}) == "pong"
    finally:
        await client.close()
    assert client.proc.returncode == 0


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory):
    root = write_project(tmp_path_factory.mktemp("depth"), {rel: text for rel, text in STEPS.values()})
    running = RunningHost(root, [], None, mode="start")
    running.wait_ready()
    yield running
    running.stop()


@pytest.mark.parametrize("lang", ["py", "js", "rb"])
def test_deep_handler_data_through_a_real_host_answers_at_once_with_the_limit_in_the_log(host: RunningHost,
                                                                                         lang: str):
    if lang == "rb":
        need("ruby")
    step = {"py": "PyDeep", "js": "JsDeep", "rb": "RbDeep"}[lang]
    for op in ("emit", "state", "result"):
        for n in (600, 3000):
            resp = httpx.get(f"{host.url}/deep/{lang}/{op}", params={"n": n}, timeout=10)
            assert resp.status_code == 500, resp.text
            trace = resp.json()["traceId"]
            logs = host.admin_get("/__steppe/logs", params={"traceId": trace}).json()
            assert any(LIMIT_TEXT in r["msg"] for r in logs), logs
    assert httpx.get(f"{host.url}/deep/{lang}/echo", params={"n": 1}).status_code == 200
    runners = host.runners()
    assert all(r["restarts"] == 0 for r in runners["runners"].values()), (step, runners)
