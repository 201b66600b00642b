"""A handler that produces more than one protocol line can carry (a state value, an emit, a stream item, its
result or a log record over `max_line`) fails alone: its runner never sends the line, so the language stays
up and the other invocations in flight are untouched.

Seen: a handler's `state.set` of a 20 MB value made each runner (Python, Node, Ruby) send a line over the
16 MiB limit; the host killed and restarted that runner, and the request, with every other one in flight in
that language, got 502 "the step's runner stopped during the request"."""

from __future__ import annotations

import threading

import httpx
import pytest

from conftest import RunningHost, need, write_project

BIG = 2 * 1024 * 1024  # twice max_line below
LIMITS = {"STEPPE_MAX_LINE": str(1024 * 1024), "STEPPE_MAX_BODY": "65536", "STEPPE_MAX_HEADERS": "8192",
          "STEPPE_MAX_EVENT": "65536"}

PROJECT = {
    "steps/big_step.py": f'''
        import asyncio
        config = {{"type": "api", "name": "PyBig", "path": "/python/big", "method": "POST", "emits": ["big.topic"]}}
        async def handler(req, ctx):
            what, big = req["body"]["what"], "x" * {BIG}
            if what == "slow":
                await asyncio.sleep(1.5)
                return {{"status": 200, "body": {{"slow": True}}}}
            if what == "log":
                ctx.logger.info("a big record", {{"big": big}})
                return {{"status": 200, "body": {{"logged": True}}}}
            if what == "result":
                return {{"status": 200, "body": {{"big": big}}}}
            if what == "raise":
                raise ValueError("boom " + big)
            try:
                if what == "state":
                    await ctx.state.set("g", "k", big)
                elif what == "emit":
                    await ctx.emit({{"topic": "big.topic", "data": {{"big": big}}}})
                elif what == "stream":
                    await ctx.streams.bigItems.set("g", "k", {{"big": big}})
            except Exception as e:
                return {{"status": 200, "body": {{"type": type(e).__name__, "message": str(e)}}}}
            return {{"status": 200, "body": {{"sent": True}}}}
    ''',
    "steps/big.step.js": f'''
        exports.config = {{ type: 'api', name: 'JsBig', path: '/node/big', method: 'POST', emits: ['big.topic'] }}
        exports.handler = async (req, ctx) => {{
          const what = req.body.what, big = 'x'.repeat({BIG})
          if (what === 'slow') {{
            await new Promise((resolve) => setTimeout(resolve, 1500))
            return {{ status: 200, body: {{ slow: true }} }}
          }}
          if (what === 'log') {{
            ctx.logger.info('a big record', {{ big }})
            return {{ status: 200, body: {{ logged: true }} }}
          }}
          if (what === 'result') return {{ status: 200, body: {{ big }} }}
          if (what === 'raise') throw new Error('boom ' + big)
          try {{
            if (what === 'state') await ctx.state.set('g', 'k', big)
            else if (what === 'emit') await ctx.emit({{ topic: 'big.topic', data: {{ big }} }})
            else if (what === 'stream') await ctx.streams.bigItems.set('g', 'k', {{ big }})
          }} catch (e) {{
            return {{ status: 200, body: {{ type: e.name, message: e.message }} }}
          }}
          return {{ status: 200, body: {{ sent: true }} }}
        }}
    ''',
    "steps/big_step.rb": f'''
        def config
          {{ 'type' => 'api', 'name' => 'RbBig', 'path' => '/ruby/big', 'method' => 'POST', 'emits' => ['big.topic'] }}
        end

        def handler(req, ctx)
          what = req['body']['what']
          big = 'x' * {BIG}
          if what == 'slow'
            sleep 1.5
            return {{ 'status' => 200, 'body' => {{ 'slow' => true }} }}
          end
          if what == 'log'
            ctx.logger.info('a big record', {{ 'big' => big }})
            return {{ 'status' => 200, 'body' => {{ 'logged' => true }} }}
          end
          return {{ 'status' => 200, 'body' => {{ 'big' => big }} }} if what == 'result'
          raise ArgumentError, "boom #{{big}}" if what == 'raise'
          begin
            case what
            when 'state' then ctx.state.set('g', 'k', big)
            when 'emit' then ctx.emit({{ 'topic' => 'big.topic', 'data' => {{ 'big' => big }} }})
            when 'stream' then ctx.streams.bigItems.set('g', 'k', {{ 'big' => big }})
            end
          rescue StandardError => e
            type = e.class.name.split('::').last
            return {{ 'status' => 200, 'body' => {{ 'type' => type, 'message' => e.message }} }}
          end
          {{ 'status' => 200, 'body' => {{ 'sent' => true }} }}
        end
    ''',
    "steps/big_items.stream.py": '''
        config = {"name": "bigItems", "schema": {"type": "object"}, "baseConfig": {"storageType": "default"}}
    ''',
}
LANGUAGES = ["python", "node", "ruby"]


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> RunningHost:
    need("ruby")
    running = RunningHost(write_project(tmp_path_factory.mktemp("big"), PROJECT), [], LIMITS).wait_ready()
    yield running
    running.stop()


def big(host: RunningHost, language: str, what: str) -> httpx.Response:
    return httpx.post(f"{host.url}/{language}/big", json={"what": what}, timeout=30)


def while_another_waits(host: RunningHost, language: str, what: str) -> httpx.Response:
    """`what` in `language`, while another invocation of the same runner is in flight: it must be answered."""
    slow: list[httpx.Response] = []
    other = threading.Thread(target=lambda: slow.append(big(host, language, "slow")))
    other.start()
    try:
        return big(host, language, what)
    finally:
        other.join()
        assert slow and slow[0].status_code == 200 and slow[0].json() == {"slow": True}, slow


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("what", ["state", "emit", "stream"])
def test_a_call_too_big_for_one_line_fails_in_the_handler_alone(host, language, what):
    pid = host.runner_pid(language)
    r = while_another_waits(host, language, what)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "PayloadTooLarge", body
    assert "max_line" in body["message"] and str(1024 * 1024) in body["message"], body
    assert host.runner_pid(language) == pid  # the runner was never restarted


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("what", ["result", "raise"])
def test_an_answer_too_big_for_one_line_answers_500_with_the_reason_logged(host, language, what):
    """A result, or an error whose message holds megabytes: the invocation fails alone, saying why."""
    pid = host.runner_pid(language)
    r = while_another_waits(host, language, what)
    assert r.status_code == 500, r.text
    trace = r.json()["traceId"]
    logs = host.admin_get("/__steppe/logs", params={"limit": 200}).json()
    reasons = [rec["msg"] for rec in logs if rec.get("traceId") == trace]
    assert any("max_line" in m for m in reasons), reasons
    if what == "result":
        assert any("PayloadTooLarge" in m for m in reasons), reasons
    assert host.runner_pid(language) == pid


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_log_record_too_big_for_one_line_is_cut_and_kept(host, language):
    pid = host.runner_pid(language)
    r = while_another_waits(host, language, "log")
    assert r.status_code == 200 and r.json() == {"logged": True}, r.text
    trace = r.headers["x-trace-id"]
    logs = host.admin_get("/__steppe/logs", params={"limit": 200}).json()
    [record] = [rec for rec in logs if rec.get("traceId") == trace and "a big record" in rec["msg"]]
    assert "max_line" in str(record), record
    assert host.runner_pid(language) == pid
