"""The one-argument dialect (docs/steps.md): triggers declared in steppe.toml, topic patterns, the
default wildcard, plain return values, groupless state, event.stream, preload globals, the hop limit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conftest import RunningHost, need, wait_until, write_project

FILES = {
    "steppe.toml": """
        max_hops = 6
        open_streams = ["progress"]
        retry_base = 0.05

        [runners.node]
        preload = ["./support/globals.js"]

        [runners.python]
        preload = ["./support/globals.py"]

        [runners.ruby]
        preload = ["./support/globals.rb"]

        [steps."hello_step.rb"]
        path = "/rb-hello"
        method = "GET"

        [steps."typed.step.ts"]
        path = "/typed"
        method = "GET"

        [steps."seen_step.rb"]
        subscribes = ["user-*"]

        [steps."hooks/signup.step.js"]
        path = "/signup"

        [steps."score_step.py"]
        path = "/score"
        method = "GET"

        [steps."plain.step.js"]
        path = "/plain/:kind"
        method = "GET"

        [steps."audit.step.js"]
        subscribes = ["user-*"]

        [steps."ping.step.js"]
        subscribes = ["ping", "pong"]

        [steps."pong_step.py"]
        subscribes = ["ping", "pong"]

        [steps."typo-step.js"]
        path = "/nowhere"
    """,
    "support/globals.js": """
        globalThis.greet = (name) => `hello ${name}`
    """,
    "support/globals.py": """
        import builtins
        builtins.double = lambda n: n * 2
    """,
    "support/globals.rb": """
        def shout(text) = text.upcase
    """,
    # Ruby: an API and a pattern subscriber in the same dialect
    "steps/hello_step.rb": """
        def handler(event)
          { status: 'ok', greeting: shout("hi #{event.query['name']}"), topic: event.topic }
        end
    """,
    "steps/seen_step.rb": """
        def handler(event)
          event.state.update('rb-seen', [{ op: 'append', value: "#{event.topic}:#{event.data['id']}" }], ttl: 600)
          event.ctx.state.set('rb', 'last', event.data['id'], { ttl: 600 })
        end
    """,
    # an API step of the dialect, declared by path relative to the root
    "steps/hooks/signup.step.js": """
        export default async function signup(event) {
          await event.state.set(`user:${event.body.id}`, { name: event.body.name }, { ttl: 600 })
          await event.emit('user-registered', { id: event.body.id })
          await event.stream('progress', { step: 'signed-up', header: event.headers['x-demo'] })
          return { status: 'queued', greeting: greet(event.body.name) }
        }
    """,
    # a pattern subscriber
    "steps/audit.step.js": """
        export default async function audit(event) {
          await event.state.update('audit', [{ op: 'append', value: { topic: event.topic, id: event.data.id } }])
        }
    """,
    # no declaration: the default wildcard. It re-emits every event it sees: it must not see its own.
    "steps/echo.step.js": """
        export default async function echo(event) {
          await event.state.update('echo-count', [{ op: 'increment' }])
          await event.emit('echoed', { from: event.topic })
        }
    """,
    # the Python dialect: an API that reads groupless state written from JS, and a preloaded builtin
    "steps/score_step.py": """
        async def handler(event):
            user = await event.state.get("user:" + event.query.get("id", ""))
            group = await event.state.get_group()
            return {"user": user, "doubled": double(21), "keys": len(group), "topic": event.topic}
    """,
    "steps/plain.step.js": """
        export default async function plain(event) {
          const kind = event.params.kind
          if (kind === 'status-string') return { status: 'processed' }
          if (kind === 'response') return { status: 201, body: { made: true }, headers: { 'x-made': 'yes' } }
          if (kind === 'list') return [1, 2, 3]
          if (kind === 'nothing') return undefined
          return { message: 'plain object' }
        }
    """,
    # two explicit subscribers feeding each other: only the hop limit stops them
    "steps/ping.step.js": """
        export default async (event) => { await event.emit(event.topic === 'ping' ? 'pong' : 'ping', {}) }
    """,
    "steps/pong_step.py": """
        async def handler(event):
            await event.emit("ping" if event.topic == "pong" else "pong", {"n": event.attempt})
    """,
    "steps/tick.step.js": """
        export default { schedule: '* * * * * *', handler: async (event) => {
          await event.state.update('ticks', [{ op: 'increment', path: 'ticks' }])
        } }
    """,
    # TypeScript, with types, in the same dialect
    "steps/typed.step.ts": """
        interface Hit { query: Record<string, string>; state: { update(key: string, ops: object[]): Promise<number> } }
        export default async function typed(event: Hit): Promise<{ ts: boolean; q: string; hits: number }> {
          const hits = await event.state.update('typed-hits', [{ op: 'increment' }])
          return { ts: true, q: event.query.q, hits }
        }
    """,
    # Motia-shaped handlers get the same response rule
    "steps/legacy.step.js": """
        exports.config = { type: 'api', name: 'LegacyJs', path: '/legacy/js', method: 'GET', emits: [] }
        exports.handler = async () => ({ message: 'plain', count: 2 })
    """,
    "steps/legacy_step.py": """
        config = {"type": "api", "name": "LegacyPy", "path": "/legacy/py", "method": "GET", "emits": []}

        async def handler(req, context):
            return {"status": "processed"}
    """,
    "steps/legacy_step.rb": """
        def config
          { type: 'api', name: 'LegacyRb', path: '/legacy/rb', method: 'GET', emits: [] }
        end

        def handler(_req, _context)
          { status: 299, body: { ok: true }, extra: 1 }
        end
    """,
    # a Motia-shaped reader, to see the dialect's default group and stream from the outside
    "steps/read.step.js": """
        exports.config = { type: 'api', name: 'Read', path: '/read', method: 'GET', emits: [] }
        exports.handler = async (req, ctx) => ({ status: 200, body: {
          defaults: await ctx.state.getGroup('default'),
          progress: await ctx.streams.progress.getGroup(req.queryParams.trace),
        } })
    """,
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    need("node")
    need("ruby")
    root = write_project(tmp_path_factory.mktemp("dialect"), FILES)
    running = RunningHost(root, [], None).wait_ready(60)
    yield running
    running.stop()


def test_a_declaration_for_no_file_is_warned_about(host: RunningHost) -> None:
    host.wait_log('steppe.toml declares [steps."..."] for no step file: typo-step.js')


def read(host: RunningHost, trace: str = "") -> dict:
    return httpx.get(f"{host.url}/read", params={"trace": trace}, timeout=10).json()


def test_declared_api_steps_take_one_event_and_answer_plain_values(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/signup", json={"id": "u1", "name": "ada"}, headers={"x-demo": "d"}, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "queued", "greeting": "hello ada"}
    trace = r.headers["x-trace-id"]
    progress = read(host, trace)["progress"]
    assert [p["step"] for p in progress] == ["signed-up"] and progress[0]["header"] == "d"
    assert {"name": "ada"} in read(host)["defaults"]
    # the default group, as the admin API shows it
    assert "default" in httpx.get(f"{host.url}/__steppe/state", timeout=10).json()["groups"]
    assert {"name": "ada"} in httpx.get(f"{host.url}/__steppe/state/default", timeout=10).json()["values"]
    user = httpx.get(f"{host.url}/__steppe/state/default/user:u1", timeout=10)
    assert user.json() == {"group": "default", "key": "user:u1", "value": {"name": "ada"}}
    assert httpx.get(f"{host.url}/__steppe/state/default/nobody", timeout=10).status_code == 404

    score = httpx.get(f"{host.url}/score", params={"id": "u1"}, timeout=10).json()
    assert score["user"] == {"name": "ada"} and score["doubled"] == 42 and score["topic"] is None
    assert score["keys"] >= 1


@pytest.mark.parametrize(("kind", "status", "body"), [
    ("status-string", 200, {"status": "processed"}),
    ("object", 200, {"message": "plain object"}),
    ("list", 200, [1, 2, 3]),
    ("response", 201, {"made": True}),
])
def test_the_response_rule(host: RunningHost, kind: str, status: int, body: object) -> None:
    r = httpx.get(f"{host.url}/plain/{kind}", timeout=10)
    assert (r.status_code, r.json()) == (status, body)
    assert r.headers["content-type"] == "application/json"


def test_typescript_steps_speak_the_dialect(host: RunningHost) -> None:
    first = httpx.get(f"{host.url}/typed", params={"q": "x"}, timeout=10).json()
    second = httpx.get(f"{host.url}/typed", params={"q": "y"}, timeout=10).json()
    assert (first, second) == ({"ts": True, "q": "x", "hits": 1}, {"ts": True, "q": "y", "hits": 2})


def test_ruby_steps_speak_the_dialect_too(host: RunningHost) -> None:
    r = httpx.get(f"{host.url}/rb-hello", params={"name": "ada"}, timeout=10)
    assert (r.status_code, r.json()) == (200, {"status": "ok", "greeting": "HI ADA", "topic": None})
    httpx.post(f"{host.url}/signup", json={"id": "u3", "name": "cy"}, timeout=10)
    wait_until(lambda: any(isinstance(v, list) and "user-registered:u3" in v for v in read(host)["defaults"]), 15,
               "the Ruby pattern subscriber")
    # the Motia-shaped context takes {ttl} options too
    wait_until(lambda: httpx.get(f"{host.url}/__steppe/state/rb/last", timeout=10).json().get("value") == "u3", 10,
               "the context's set with {ttl}")


@pytest.mark.parametrize(("lang", "body"), [
    ("js", {"message": "plain", "count": 2}),
    ("py", {"status": "processed"}),
    ("rb", {"status": 299, "body": {"ok": True}, "extra": 1}),  # an unknown key: a body, not a response
])
def test_config_and_handler_steps_follow_the_same_rule(host: RunningHost, lang: str, body: object) -> None:
    r = httpx.get(f"{host.url}/legacy/{lang}", timeout=10)
    assert (r.status_code, r.json()) == (200, body)


def test_a_handler_returning_nothing_answers_204(host: RunningHost) -> None:
    r = httpx.get(f"{host.url}/plain/nothing", timeout=10)
    assert (r.status_code, r.content) == (204, b"")


def test_patterns_route_and_a_wildcard_never_hears_itself(host: RunningHost) -> None:
    httpx.post(f"{host.url}/signup", json={"id": "u2", "name": "bob"}, timeout=10)

    def audited() -> list | None:
        rows = [v for v in read(host)["defaults"] if isinstance(v, list) and v and "topic" in v[0]]
        return rows[0] if rows and any(e["id"] == "u2" for e in rows[0]) else None

    assert {"topic": "user-registered", "id": "u2"} in wait_until(audited, 15, "the pattern subscriber")
    events = httpx.get(f"{host.url}/__steppe/events", timeout=10).json()
    # `echoed` events reach nobody (echo excludes its own): they are unrouted, not a feedback loop
    assert events["unrouted"] and all(e["topic"] == "echoed" for e in events["unrouted"])


def test_a_cycling_trace_is_cut_at_the_hop_limit(host: RunningHost) -> None:
    httpx.post(f"{host.url}/__steppe/emit", json={"topic": "ping", "data": {}}, timeout=10)

    def loop_letters() -> list | None:
        dead = httpx.get(f"{host.url}/__steppe/dlq", timeout=10).json()
        rows = dead if isinstance(dead, list) else dead.get("items") or dead.get("dead") or []
        rows = [d for d in rows if "LoopDetected" in d["error"]]
        return rows or None

    rows = wait_until(loop_letters, 20, "a LoopDetected dead letter")
    assert all(d["event"]["hops"] == 7 for d in rows)


def test_a_schedule_export_is_a_cron_step(host: RunningHost) -> None:
    wait_until(lambda: any(isinstance(v, dict) and v.get("ticks", 0) >= 1 for v in read(host)["defaults"]), 10,
               "a cron tick")
