"""state.update from every runner, and the delivery an event handler sees (ctx.topic/attempt/eventId).

One host with a counting step per language: 1,000 concurrent increments of one key from Node, Python and
Ruby at once must all land, and a failed `expect` must reach each handler as a catchable StateConflict.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conftest import RunningHost, need, wait_until, write_project

TOTAL = 1000
SHARES = {"js": 334, "py": 333, "rb": 333}

FILES = {
    "steps/bump.step.js": """
        exports.config = { type: 'event', name: 'BumpJs', subscribes: ['bump-js'], emits: [] }
        exports.handler = async (input, ctx) => {
          await ctx.state.update('counters', 'hits', [{ op: 'increment' }])
          if (input.probe) {
            await ctx.state.set('seen', 'js', { topic: ctx.topic, attempt: ctx.attempt, eventId: ctx.eventId })
          }
        }
    """,
    "steps/bump_step.py": """
        config = {"type": "event", "name": "BumpPy", "subscribes": ["bump-py"], "emits": []}

        async def handler(input, ctx):
            await ctx.state.update("counters", "hits", [{"op": "increment"}])
            if input.get("probe"):
                await ctx.state.set("seen", "py", {"topic": ctx.topic, "attempt": ctx.attempt,
                                                   "eventId": ctx.eventId})
    """,
    "steps/bump_step.rb": """
        def config
          { type: 'event', name: 'BumpRb', subscribes: ['bump-rb'], emits: [] }
        end

        def handler(input, ctx)
          ctx.state.update('counters', 'hits', [{ op: 'increment' }])
          if input['probe']
            ctx.state.set('seen', 'rb', { 'topic' => ctx.topic, 'attempt' => ctx.attempt, 'eventId' => ctx.event_id })
          end
        end
    """,
    # fails on its first attempt only: ctx.attempt must say 2 on the retry
    "steps/flaky.step.js": """
        exports.config = { type: 'event', name: 'Flaky', subscribes: ['flaky'], emits: [] }
        exports.handler = async (input, ctx) => {
          if (ctx.attempt === 1) throw new Error('first attempt fails')
          await ctx.state.set('seen', 'flaky', { topic: ctx.topic, attempt: ctx.attempt, eventId: ctx.eventId })
        }
    """,
    "steps/fan.step.js": """
        exports.config = { type: 'api', name: 'Fan', path: '/fan', method: 'POST', emits: [] }
        exports.handler = async (req, ctx) => {
          const sends = []
          for (const [lang, n] of Object.entries(req.body)) {
            for (let i = 0; i < n; i++) sends.push(ctx.emit({ topic: `bump-${lang}`, data: { i } }))
          }
          await Promise.all(sends)
          return { status: 202, body: { sent: sends.length } }
        }
    """,
    "steps/read.step.js": """
        exports.config = { type: 'api', name: 'Read', path: '/read', method: 'GET', emits: [] }
        exports.handler = async (req, ctx) => ({
          status: 200,
          body: { hits: await ctx.state.get('counters', 'hits'), seen: await ctx.state.getGroup('seen'),
                  apiTopic: ctx.topic === undefined ? 'absent' : ctx.topic },
        })
    """,
    "steps/cas.step.js": """
        exports.config = { type: 'api', name: 'CasJs', path: '/cas/js', method: 'POST', emits: [] }
        exports.handler = async (req, ctx) => {
          const created = await ctx.state.update('cas', 'js',
            [{ op: 'expect', value: null }, { op: 'set', value: { n: 1 } }])
          try {
            await ctx.state.update('cas', 'js',
              [{ op: 'expect', path: 'n', value: 7 }, { op: 'set', path: 'n', value: 8 }])
            return { status: 200, body: { caught: null } }
          } catch (e) {
            return { status: 200, body: { caught: e.name, created, after: await ctx.state.get('cas', 'js') } }
          }
        }
    """,
    "steps/cas_step.py": """
        from steppe_runner import StateConflict

        config = {"type": "api", "name": "CasPy", "path": "/cas/py", "method": "POST", "emits": []}

        async def handler(req, ctx):
            created = await ctx.state.update("cas", "py", [{"op": "expect", "value": None},
                                                          {"op": "set", "value": {"n": 1}}])
            try:
                await ctx.state.update("cas", "py", [{"op": "expect", "path": "n", "value": 7}])
            except StateConflict as e:
                return {"status": 200, "body": {"caught": type(e).__name__, "created": created,
                                                "after": await ctx.state.get("cas", "py")}}
            return {"status": 200, "body": {"caught": None}}
    """,
    "steps/cas_step.rb": """
        def config
          { type: 'api', name: 'CasRb', path: '/cas/rb', method: 'POST', emits: [] }
        end

        def handler(_req, ctx)
          created = ctx.state.update('cas', 'rb', [{ op: 'expect', value: nil }, { op: 'set', value: { n: 1 } }])
          begin
            ctx.state.update('cas', 'rb', [{ op: 'expect', path: 'n', value: 7 }])
            { status: 200, body: { caught: nil } }
          rescue Steppe::StateConflict => e
            { status: 200, body: { caught: e.class.name.split('::').last, created: created,
                                   after: ctx.state.get('cas', 'rb') } }
          end
        end
    """,
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    need("node")
    need("ruby")
    root = write_project(tmp_path_factory.mktemp("update"), FILES)
    (root / "steppe.toml").write_text("retry_base = 0.05\nretry_cap = 0.1\n")
    running = RunningHost(root, [], None).wait_ready(60)
    yield running
    running.stop()


def test_every_runner_exposes_the_delivery_to_event_handlers(host: RunningHost) -> None:
    for lang in SHARES:
        assert httpx.post(f"{host.url}/__steppe/emit", json={"topic": f"bump-{lang}", "data": {"probe": True}},
                          timeout=10).status_code == 202
    flaky = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "flaky", "data": {}}, timeout=10).json()

    def seen() -> list[dict] | None:
        rows = httpx.get(f"{host.url}/read", timeout=10).json()["seen"]
        return rows if len(rows) == 4 else None

    rows = wait_until(seen, 20, "every step to record its delivery")
    by_topic = {r["topic"]: r for r in rows}
    assert set(by_topic) == {"bump-js", "bump-py", "bump-rb", "flaky"}
    for topic in ("bump-js", "bump-py", "bump-rb"):
        assert by_topic[topic]["attempt"] == 1
        assert isinstance(by_topic[topic]["eventId"], str) and by_topic[topic]["eventId"]
    assert by_topic["flaky"] == {"topic": "flaky", "attempt": 2, "eventId": flaky["id"]}
    assert httpx.get(f"{host.url}/read", timeout=10).json()["apiTopic"] == "absent"


def test_a_failed_expect_is_a_catchable_state_conflict_in_every_runner(host: RunningHost) -> None:
    for lang in SHARES:
        body = httpx.post(f"{host.url}/cas/{lang}", timeout=10).json()
        assert body == {"caught": "StateConflict", "created": {"n": 1}, "after": {"n": 1}}, (lang, body)


def test_a_thousand_concurrent_increments_from_three_languages_all_land(host: RunningHost) -> None:
    start = httpx.get(f"{host.url}/read", timeout=10).json()["hits"] or 0
    assert httpx.post(f"{host.url}/fan", json=SHARES, timeout=60).json() == {"sent": TOTAL}
    wait_until(lambda: httpx.get(f"{host.url}/read", timeout=10).json()["hits"] == start + TOTAL, 90,
               f"{TOTAL} increments", step=0.25)
    counts = host.runners()["queue"]
    assert not counts.get("dead"), counts
