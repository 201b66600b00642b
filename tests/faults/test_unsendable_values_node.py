"""Values a JS handler produces that the Node runner could not put on the wire, or could not read, against a
real host and its Node runner: each fails (or is answered) alone, at once, and the runner keeps serving.

Seen (before the fix):
- A lone UTF-16 surrogate in anything the runner sent (a body, a thrown error's message, a header, an object
  key, a state value, emit data, a log line): JSON.stringify writes it as the escape `\\ud800`, which the host
  (orjson) refuses, so it dropped the whole line ("ignored a line from the node runner (not JSON)"). The
  invoke's answer was lost: the client waited for the timeout (504), then the runner ignored the cancel and
  was SIGKILLed, with every other JS request in flight; an event delivery was dead-lettered as a timeout.
  A client could cause it: a step that shortens a name it was sent can cut an emoji in half. (The JSON
  escape `\\ud800` in a request body cannot: the host answers 400, the body is not valid JSON to it.)
- A thrown value the runner could not read (a Proxy whose `has` trap throws, an Error whose `message` or
  `stack` getter throws, a throwing `Error.prepareStackTrace`): describing it threw inside the runner, so the
  invoke was never answered (or the runner crashed outright).
- A generator function as handler: calling it runs nothing, and the generator object it returns was taken
  as the result: the delivery counted as a success, nothing ran, nothing was logged.
"""

from __future__ import annotations

import time

import httpx
import pytest

from conftest import RunningHost, wait_until, write_project
from faults import in_flight
from faults.in_flight import dead_lettered, trace_logs

TIMEOUT = 3  # seconds a handler may run here: an unanswered invoke shows as a 504 after it, not after 30 s
QUICK = 2.5  # an answer slower than this waited for the timeout
ENV = {"STEPPE_API_TIMEOUT": str(TIMEOUT), "STEPPE_EVENT_TIMEOUT": str(TIMEOUT), "STEPPE_RETRY_BASE": "0.1",
       "STEPPE_BUS": "sqlite"}

PROJECT = {
    "steps/lone.step.js": r"""
        exports.config = { type: 'api', name: 'Lone', path: '/lone/:what', method: 'POST', emits: ['lone.in'],
                           infrastructure: { handler: { timeout: 3 } } }
        const LONE = 'a\ud800b'
        exports.handler = async (req, ctx) => {
          switch (req.pathParams.what) {
            case 'slow':
              await new Promise((resolve) => setTimeout(resolve, 600))
              return { status: 200, body: { slow: true } }
            case 'body': return { status: 200, body: LONE }
            case 'json': return {
              status: 200,
              body: {
                text: LONE,
                low: 'c\udc00d',
                pair: '\ud83d\ude00', // a valid pair: sent as it is
                escaped: '\\ud800', // a backslash and "ud800": text, not a surrogate
                both: '\\\ud800', // a backslash, then a lone surrogate
                reversed: '\ude00\ud83d', // two lone surrogates, in the wrong order for a pair
              },
            }
            case 'key': return { status: 200, body: { [LONE]: 1 } }
            case 'header': return { status: 200, headers: { 'x-lone': LONE }, body: { ok: true } }
            case 'throw': throw new Error(`bad ${LONE}`)
            case 'short': return { status: 200, body: { name: req.body.name.slice(0, 2) } }
            case 'state':
              await ctx.state.set('lone', 'k', { [LONE]: LONE })
              return { status: 200, body: await ctx.state.get('lone', 'k') }
            case 'emit':
              await ctx.emit({ topic: 'lone.in', data: { text: LONE } })
              return { status: 200, body: { emitted: true } }
            case 'log':
              console.log(`printed ${LONE}`)
              ctx.logger.info(`logged ${LONE}`, { field: LONE })
              return { status: 200, body: { logged: true } }
          }
          return { status: 404, body: 'no such case' }
        }
    """,
    "steps/lone_in.step.js": r"""
        exports.config = { type: 'event', name: 'LoneIn', subscribes: ['lone.in'], emits: [] }
        exports.handler = async (input, ctx) => { await ctx.state.set('lone', 'received', input) }
    """,
    "steps/got.step.js": """
        exports.config = { type: 'api', name: 'Got', path: '/got/:key', method: 'GET', emits: [] }
        exports.handler = async (req, ctx) => ({
          status: 200, body: { value: await ctx.state.get('lone', req.pathParams.key) },
        })
    """,
    "steps/unreadable.step.js": r"""
        exports.config = { type: 'api', name: 'Unreadable', path: '/unreadable/:what', method: 'POST', emits: [],
                           infrastructure: { handler: { timeout: 3 } } }
        function thrown(what) {
          switch (what) {
            case 'proxy': return new Proxy({}, { has() { throw new Error('proxy has boom') } })
            case 'proxy-all': return new Proxy({}, {
              has() { throw new Error('proxy has boom') },
              get() { throw new Error('proxy get boom') },
              getPrototypeOf() { throw new Error('proxy prototype boom') },
            })
            case 'message': {
              const e = new Error('never seen')
              Object.defineProperty(e, 'message', { get() { throw new Error('message getter boom') } })
              return e
            }
            case 'stack': {
              const e = new TypeError('the stack is unreadable')
              Object.defineProperty(e, 'stack', { get() { throw new Error('stack getter boom') } })
              return e
            }
            case 'object-message': return { message: Object.create(null) }
          }
        }
        exports.handler = async (req) => { throw thrown(req.pathParams.what) }
    """,
    "steps/unreadable_event.step.js": r"""
        exports.config = { type: 'event', name: 'UnreadableEvent', subscribes: ['unreadable.in'], emits: [],
                           infrastructure: { queue: { maxRetries: 2 } } }
        exports.handler = async () => { throw new Proxy({}, { has() { throw new Error('event proxy boom') } }) }
    """,
    "steps/lone_event.step.js": r"""
        exports.config = { type: 'event', name: 'LoneEvent', subscribes: ['lone.fails'], emits: [],
                           infrastructure: { queue: { maxRetries: 2 } } }
        exports.handler = async () => { throw new Error('event bad a\ud800b') }
    """,
    "steps/generator.step.js": """
        exports.config = { type: 'api', name: 'Generator', path: '/generator/async', method: 'POST', emits: [],
                           infrastructure: { handler: { timeout: 3 } } }
        exports.handler = async function* (req, ctx) { ctx.logger.info('generator ran'); yield 1 }
    """,
    "steps/sync_generator.step.js": """
        exports.config = { type: 'api', name: 'SyncGenerator', path: '/generator/sync', method: 'POST',
                           emits: [] }
        exports.handler = function* () { yield { status: 200, body: 'never' } }
    """,
    "steps/generator_event.step.js": """
        exports.config = { type: 'event', name: 'GeneratorEvent', subscribes: ['generator.in'], emits: [],
                           infrastructure: { queue: { maxRetries: 2 } } }
        exports.handler = async function* (input, ctx) { await ctx.state.set('lone', 'generator', input) }
    """,
}


def post(host: RunningHost, path: str, **kwargs) -> tuple[httpx.Response, float]:  # noqa: ANN003
    return in_flight.post(host, path, TIMEOUT * 4, **kwargs)


def while_another_waits(host: RunningHost, path: str, **kwargs) -> tuple[httpx.Response, float]:  # noqa: ANN003
    return in_flight.while_another_waits(host, "node", "/lone/slow", path, TIMEOUT * 4, **kwargs)


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> RunningHost:
    running = RunningHost(write_project(tmp_path_factory.mktemp("unsendable"), PROJECT), [], ENV).wait_ready()
    yield running
    running.stop()


def failure_text(host: RunningHost, r: httpx.Response) -> str:
    """What the step's log says about the failed request `r` (message, fields and stack, as one text)."""
    trace = r.json()["traceId"]
    return wait_until(lambda: " ".join(str(rec) for rec in trace_logs(host, trace) if rec["level"] == "error"),
                      5, f"an error record of trace {trace}")






# ---- 1. lone surrogates: sent as U+FFFD ----

@pytest.mark.parametrize(("what", "expected"), [
    ("body", "a\ufffdb"),
    ("json", {"text": "a\ufffdb", "low": "c\ufffdd", "pair": "\U0001f600", "escaped": "\\ud800",
              "both": "\\\ufffd", "reversed": "\ufffd\ufffd"}),
    ("key", {"a\ufffdb": 1}),
    ("state", {"a\ufffdb": "a\ufffdb"}),
])
def test_a_lone_surrogate_in_an_answer_is_sent_as_a_replacement_character(host, what, expected):
    r, took = while_another_waits(host, f"/lone/{what}")
    assert r.status_code == 200, r.text
    assert (r.text if isinstance(expected, str) else r.json()) == expected
    assert took < QUICK, f"answered after {took:.1f}s"


def test_a_lone_surrogate_made_from_a_clients_input_is_answered(host):
    """A step that keeps the first two UTF-16 units of a name cuts the emoji of "a😀" in half."""
    r, took = while_another_waits(host, "/lone/short", json={"name": "a\U0001f600"})
    assert r.status_code == 200, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    assert r.json() == {"name": "a\ufffd"}
    # the JSON escape of a lone surrogate in a request body never reaches a handler: the host refuses it
    r, took = post(host, "/lone/short", content=b'{"name": "x\\ud800y"}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid JSON body", r.text
    assert took < QUICK, f"answered after {took:.1f}s"


def test_a_lone_surrogate_in_a_header_value_fails_the_request_alone_at_once(host):
    """Sent as U+FFFD, which a header cannot carry (latin-1): 500 with the host's reason in the step's log."""
    r, took = while_another_waits(host, "/lone/header")
    assert r.status_code == 500, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    assert "x-lone" in failure_text(host, r) and "latin-1" in failure_text(host, r)


def test_a_lone_surrogate_in_a_thrown_error_answers_500_with_the_message_logged(host):
    r, took = while_another_waits(host, "/lone/throw")
    assert r.status_code == 500, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    assert "bad a\ufffdb" in failure_text(host, r)


def test_a_lone_surrogate_in_emitted_data_reaches_the_subscriber_replaced(host):
    r, took = while_another_waits(host, "/lone/emit")
    assert r.status_code == 200 and r.json() == {"emitted": True}, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    got = wait_until(lambda: httpx.get(f"{host.url}/got/received").json()["value"], 5, "the emitted event")
    assert got == {"text": "a\ufffdb"}


def test_a_lone_surrogate_in_printed_and_logged_text_is_kept_in_the_log(host):
    r, took = while_another_waits(host, "/lone/log")
    assert r.status_code == 200 and r.json() == {"logged": True}, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    msgs = {rec["msg"]: rec for rec in trace_logs(host, r.headers["x-trace-id"])}
    assert "printed a\ufffdb" in msgs, list(msgs)
    assert "logged a\ufffdb" in msgs, list(msgs)
    assert msgs["logged a\ufffdb"]["fields"]["field"] == "a\ufffdb"


def test_a_lone_surrogate_in_an_event_handlers_error_is_retried_then_dead_lettered_with_the_reason(host):
    letter = dead_lettered(host, "node", "lone.fails", "LoneEvent", TIMEOUT * 2)
    assert "event bad a\ufffdb" in letter["error"], letter
    assert "Timeout" not in letter["error"], letter


# ---- 2. thrown values the runner cannot read ----

@pytest.mark.parametrize(("what", "reason"), [
    ("proxy", "proxy has boom"),
    ("proxy-all", "boom"),
    ("message", "message getter boom"),
    ("stack", "the stack is unreadable"),
    ("object-message", "Cannot convert object to primitive value"),
])
def test_an_unreadable_thrown_value_answers_500_at_once_naming_the_reason(host, what, reason):
    r, took = while_another_waits(host, f"/unreadable/{what}")
    assert r.status_code == 500, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    assert reason in failure_text(host, r)


def test_an_unreadable_value_thrown_by_an_event_handler_is_retried_then_dead_lettered(host):
    letter = dead_lettered(host, "node", "unreadable.in", "UnreadableEvent", TIMEOUT * 2)
    assert "event proxy boom" in letter["error"], letter


def test_a_throwing_prepare_stack_trace_fails_the_request_alone(tmp_path, start_host):
    """`Error.prepareStackTrace` is global to the runner: one that throws made every stack unreadable and
    crashed the runner (502 and a restart). Now the request fails with its message, and later ones work."""
    project = {
        "steps/poison.step.js": """
            exports.config = { type: 'api', name: 'Poison', path: '/poison', method: 'POST', emits: [],
                               infrastructure: { handler: { timeout: 3 } } }
            exports.handler = async () => {
              Error.prepareStackTrace = () => { throw new Error('prepare boom') }
              throw new RangeError('poisoned stack')
            }
        """,
        "steps/fails.step.js": """
            exports.config = { type: 'api', name: 'Fails', path: '/fails', method: 'POST', emits: [] }
            exports.handler = async () => { throw new Error('a later failure') }
        """,
        "steps/ok.step.js": """
            exports.config = { type: 'api', name: 'Ok', path: '/ok', method: 'POST', emits: [] }
            exports.handler = async () => ({ status: 200, body: { pid: process.pid } })
        """,
    }
    host = start_host(write_project(tmp_path, project), env=ENV)
    pid = host.runner_pid("node")
    r, took = post(host, "/poison")
    assert r.status_code == 500, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    assert "poisoned stack" in failure_text(host, r)
    later, _ = post(host, "/fails")
    assert later.status_code == 500, later.text
    assert "a later failure" in failure_text(host, later)
    ok, _ = post(host, "/ok")
    assert ok.status_code == 200 and ok.json() == {"pid": pid}, ok.text
    assert host.runner_pid("node") == pid


# ---- 3. generator functions as handlers ----

@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_generator_handler_answers_500_saying_so(host, kind):
    r, took = while_another_waits(host, f"/generator/{kind}")
    assert r.status_code == 500, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    text = failure_text(host, r)
    assert "TypeError" in text and "generator function" in text, text


def test_a_generator_event_handler_is_retried_then_dead_lettered_saying_so(host):
    letter = dead_lettered(host, "node", "generator.in", "GeneratorEvent", TIMEOUT * 2)
    assert "TypeError" in letter["error"] and "generator function" in letter["error"], letter


GLOBALS = {
    "steps/ok.step.js": """
        exports.config = { type: 'api', name: 'Fine', path: '/fine', method: 'GET', emits: [] }
        exports.handler = async () => ({ status: 200, body: { fine: JSON.stringify({ a: 1 }) } })
    """,
    "steps/immediate.step.js": """
        globalThis.setImmediate = () => {}
        exports.config = { type: 'api', name: 'Immediate', path: '/immediate', method: 'GET', emits: [] }
        exports.handler = async () => ({ status: 200 })
    """,
    "steps/stringify.step.js": """
        JSON.stringify = () => '"nope"'
        exports.config = { type: 'api', name: 'Stringify', path: '/stringify', method: 'GET', emits: [] }
        exports.handler = async () => ({ status: 200 })
    """,
    "steps/tojson.step.js": """
        Object.prototype.toJSON = function () { return 'x' }
        exports.config = { type: 'api', name: 'ToJson', path: '/tojson', method: 'GET', emits: [] }
        exports.handler = async () => ({ status: 200 })
    """,
}


def test_a_step_file_replacing_globals_the_runner_uses_fails_alone_naming_them(tmp_path, start_host):
    """Seen: `globalThis.setImmediate = () => {}` at a step file's top level stopped the Node runner answering:
    killed after the ping timeout, it loaded the file again and crash-looped (every JS step 502, then 503), the
    file never named; a replaced JSON.stringify was blamed as 'ConnectionLost'; an Object.prototype.toJSON made
    the host log an AttributeError and drop the step from view."""
    host = start_host(write_project(tmp_path, GLOBALS), env=ENV)
    steps = {s["path"]: s for s in httpx.get(f"{host.url}/__steppe/steps", timeout=10).json()["steps"]}
    for path, replaced in (("steps/immediate.step.js", "globalThis.setImmediate"),
                           ("steps/stringify.step.js", "JSON.stringify"),
                           ("steps/tojson.step.js", "Object.prototype.toJSON")):
        assert steps[path]["status"] == "error" and f"the file replaces {replaced}" in steps[path]["error"], steps[path]
    pid = host.runners()["runners"]["node"]["pid"]
    for _ in range(3):
        r = httpx.get(f"{host.url}/fine", timeout=10)
        assert r.json() == {"fine": '{"a":1}'}, r.text
    time.sleep(1.5)  # past a ping: the runner answers, nothing restarted it
    assert host.runners()["runners"]["node"]["pid"] == pid and host.runners()["runners"]["node"]["restarts"] == 0
