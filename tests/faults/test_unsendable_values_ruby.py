"""Values a Ruby handler produces that the Ruby runner could not put on the wire, exceptions it could not describe,
and handlers that end their own thread or signal their runner, against a real host and its Ruby runner: each fails
(or is answered) alone, at once, with the reason in the step's log, and the runner keeps serving.

Seen (before the fix):
- A number the host cannot parse (`10**5000`), or a user `to_json` returning text that is not JSON, in a body,
  an emit or a state.set: the runner sent the line anyway, the host dropped it as not JSON, and the request hung
  until its timeout (504), then the Ruby runner was SIGKILLed with every other Ruby request in flight (502). A log
  record holding such a value was silently lost. (Integers are refused by the runner; what a user's to_json
  writes is refused by the host, which now fails that call at once with the reason: protocol/SPEC.md.)
  `2**70` was stored and answered as the Float 1.18e21, while the
  Python and Node runners refuse integers beyond 64 bits (the host's JSON decoder, orjson, keeps -2**63..2**64-1).
- An exception whose `message`, `to_s` or `backtrace` raises ended the whole runner (exit 1): 502 for the request
  and for every Ruby request in flight; an event's dead letter said only `ConnectionLost`.
- `Thread.current.kill` in a handler left its invoke unanswered until the timeout (504).
- `Process.kill('INT', Process.pid)` in a handler ended the runner (502 and a restart); Python and Node ignore it.
- `context.logger.info("x\\xff")` (invalid UTF-8) raised ArgumentError in the handler, while `puts` of it worked.
"""

from __future__ import annotations

import httpx
import pytest

from conftest import RunningHost, wait_until, write_project
from faults import in_flight
from faults.in_flight import dead_lettered, trace_logs

TIMEOUT = 3  # seconds a handler may run here: an unanswered invoke shows as a 504 after it, not after 30 s
QUICK = 2.5  # an answer slower than this waited for the timeout
ENV = {"STEPPE_API_TIMEOUT": str(TIMEOUT), "STEPPE_EVENT_TIMEOUT": str(TIMEOUT), "STEPPE_RETRY_BASE": "0.05",
       "STEPPE_RETRY_CAP": "0.2"}

PROJECT = {
    "steps/send_step.rb": r"""
        class BadJson
          def to_json(*_args) = '{{'
        end

        class GoodJson
          def to_json(*_args) = '{"good": [1, 2.5, "x"] /* a comment Ruby allows and the host does not */}'
        end

        class TextJson
          def initialize(text) = @text = text
          def to_json(*_args) = @text
        end

        def config
          { type: 'api', name: 'RbSend', path: '/send/:what', method: 'POST', emits: ['rb.sent'],
            infrastructure: { handler: { timeout: 3 } } }
        end

        def bad_object
          o = Object.new
          def o.to_json(*_args) = '{{'
          o
        end

        def handler(req, ctx)
          case req.path_params.what
          when 'slow'
            sleep 0.6
            { status: 200, body: { slow: true } }
          when 'huge' then { status: 200, body: { x: 10**5000 } }
          when 'wide' then { status: 200, body: { x: 2**70 } }
          when 'below' then { status: 200, body: [-2**63 - 1] }
          when 'edges' then { status: 200, body: { max: 2**64 - 1, min: -2**63 } }
          when 'digits' then { status: 200, body: { s: ':12345678901234567890123]', f: 0.00012345678901234567 } }
          when 'singleton' then { status: 200, body: { o: bad_object } }
          when 'class' then { status: 200, body: [BadJson.new] }
          when 'infinite' then { status: 200, body: { n: TextJson.new('1e400') } }
          when 'wide-text' then { status: 200, body: { n: TextJson.new('1180591620717411303424') } }
          when 'good' then { status: 200, body: { v: GoodJson.new } }
          when 'state-wide' then ctx.state.set('rb', 'k', { n: 2**70 })
          when 'state-object' then ctx.state.set('rb', 'k', { o: bad_object })
          when 'emit-huge' then ctx.emit(topic: 'rb.sent', data: { n: 10**5000 })
          when 'emit-object' then ctx.emit(topic: 'rb.sent', data: [BadJson.new])
          when 'stream-object' then ctx.streams.things.set('g', 'i', { o: bad_object })
          when 'rescued'
            begin
              ctx.state.set('rb', 'k', bad_object)
            rescue StandardError => e # the host's refusal (InvalidParams), raised at the call
              { status: 200, body: { raised: e.class.name, message: e.message } }
            end
          end
        end
    """,
    "steps/things_stream.rb": """
        def config
          { name: 'things', schema: { type: 'object' } }
        end
    """,
    "steps/log_step.rb": r"""
        def config
          { type: 'api', name: 'RbLog', path: '/log/:what', method: 'POST', emits: [] }
        end

        def handler(req, ctx)
          if req.path_params.what == 'utf8'
            ctx.logger.info("bad \xff msg", { f: "x\xff", "k\xfe" => 1, nested: ["y\xff"] })
            ctx.logger.warn("bad \xff words", token: "Bearer se\xffcret")
            puts "printed \xff line"
            return { logged: true }
          end

          o = Object.new
          def o.to_json(*_args) = '{{'
          unreadable = Object.new
          def unreadable.inspect = raise('no inspect either')
          def unreadable.to_s = raise('no to_s either')
          ctx.logger.info('huge', { n: 10**5000, w: 2**70, ok: 1, o: o })
          ctx.logger.info(unreadable, { u: unreadable, ok: 2 })
          ctx.logger.info('after')
          { logged: true }
        end
    """,
    "steps/raise_step.rb": """
        def config
          { type: 'api', name: 'RbRaise', path: '/raise/:how', method: 'POST', emits: [] }
        end

        def handler(req, _ctx)
          case req.path_params.how
          when 'message'
            e = RuntimeError.new('never seen')
            def e.message = raise('message boom')
            raise e
          when 'to_s'
            text = Object.new
            def text.to_s = raise('to_s boom')
            raise RuntimeError, text
          when 'backtrace'
            e = ArgumentError.new('a readable message')
            def e.backtrace = raise('backtrace boom')
            raise e
          when 'all'
            e = RuntimeError.new('never seen')
            def e.message = raise('message boom')
            def e.to_s = raise('to_s boom')
            def e.backtrace = raise('backtrace boom')
            def e.full_message(*) = raise('full_message boom')
            raise e
          end
        end
    """,
    "steps/raise_event_step.rb": """
        def config
          { type: 'event', name: 'RbRaiseEvent', subscribes: ['rb.unreadable'], emits: [],
            infrastructure: { queue: { maxRetries: 2 } } }
        end

        def handler(_input, _ctx)
          e = RuntimeError.new('never seen')
          def e.message = raise('event message boom')
          raise e
        end
    """,
    "steps/state_event_step.rb": """
        def config
          { type: 'event', name: 'RbStateEvent', subscribes: ['rb.unsendable'], emits: [],
            infrastructure: { queue: { maxRetries: 2 } } }
        end

        def handler(_input, ctx)
          o = Object.new
          def o.to_json(*_args) = '{{'
          ctx.state.set('rb', 'event', { o: o })
        end
    """,
    "steps/thread_step.rb": """
        def config
          { type: 'api', name: 'RbThread', path: '/thread/:how', method: 'POST', emits: [],
            infrastructure: { handler: { timeout: 3 } } }
        end

        def handler(req, _ctx)
          case req.path_params.how
          when 'kill' then Thread.current.kill
          when 'exit' then Thread.exit
          when 'int'
            Process.kill('INT', Process.pid)
            sleep 0.3 # the signal arrives meanwhile
          end
          { status: 200, body: { pid: Process.pid } }
        end
    """,
}


def post(host: RunningHost, path: str, **kwargs) -> tuple[httpx.Response, float]:  # noqa: ANN003
    return in_flight.post(host, path, TIMEOUT * 4, **kwargs)


def while_another_waits(host: RunningHost, path: str, **kwargs) -> tuple[httpx.Response, float]:  # noqa: ANN003
    return in_flight.while_another_waits(host, "ruby", "/send/slow", path, TIMEOUT * 4, **kwargs)


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> RunningHost:
    running = RunningHost(write_project(tmp_path_factory.mktemp("unsendable_rb"), PROJECT), [], ENV).wait_ready()
    yield running
    running.stop()


def failed(host: RunningHost, r: httpx.Response, took: float) -> tuple[dict, str]:
    """A handler failure's prompt 500 and what the step's log says about it (error records, as one text)."""
    assert r.status_code == 500, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    body = r.json()
    assert body["error"] == "Internal Server Error" and body["traceId"], body
    trace = body["traceId"]
    text = wait_until(lambda: " ".join(str(rec) for rec in trace_logs(host, trace) if rec["level"] == "error"),
                      5, f"an error record of trace {trace}")
    return body, text






# ---- 1. values the host cannot decode: refused in the runner ----

WIDE = "Integer exceeds 64-bit range"
UNREADABLE = "could not be read by the host"  # what a user's to_json wrote: the host refuses the call at once


@pytest.mark.parametrize(("what", "reasons"), [
    ("huge", [WIDE, "5001 digits"]),  # hung until 504, then SIGKILL, before
    ("wide", [WIDE, "1180591620717411303424"]),  # answered 200 {"x": 1.1805916207174113e+21} before
    ("below", [WIDE, "-9223372036854775809"]),
    ("wide-text", [WIDE]),  # a to_json writing 1180591620717411303424: the host would read a Float
])
def test_a_result_the_host_could_not_decode_answers_500_at_once_saying_why(host, what, reasons):
    r, took = while_another_waits(host, f"/send/{what}")
    body, text = failed(host, r, took)
    assert body["type"] == "TypeError", body
    assert "the handler's result is not JSON-serialisable" in body["message"], body
    for reason in reasons:
        assert reason in body["message"] and reason in text, (reason, body, text)


@pytest.mark.parametrize(("what", "reason"), [
    ("singleton", "expected"),  # '{{'
    ("class", "expected"),
    ("infinite", "infinity"),  # 1e400
    ("good", "comment"),  # JSON with a comment, which Ruby's parser allows and the host's does not
])
def test_a_result_whose_to_json_wrote_what_the_host_cannot_read_answers_500_at_once(host, what, reason):
    r, took = while_another_waits(host, f"/send/{what}")
    body, text = failed(host, r, took)
    assert body["type"] == "UnreadableAnswer" and UNREADABLE in body["message"], body
    assert UNREADABLE in text


@pytest.mark.parametrize(("what", "expected"), [
    ("edges", {"max": 2**64 - 1, "min": -2**63}),  # the widest integers the host keeps exactly
    ("digits", {"s": ":12345678901234567890123]", "f": 0.00012345678901234567}),
])
def test_values_the_host_can_decode_are_answered_exactly(host, what, expected):
    r, took = while_another_waits(host, f"/send/{what}")
    assert r.status_code == 200, r.text
    assert r.json() == expected
    assert took < QUICK, f"answered after {took:.1f}s"


@pytest.mark.parametrize(("what", "reasons"), [
    ("state-wide", ["state.set value is not JSON-serialisable", WIDE]),  # stored as a Float before
    ("emit-huge", ["emit data is not JSON-serialisable", WIDE]),
    ("state-object", ["state.set", UNREADABLE]),
    ("emit-object", ["emit", UNREADABLE]),
    ("stream-object", ["streams.set", UNREADABLE]),
])
def test_a_host_call_with_a_value_the_host_could_not_decode_fails_in_the_handler(host, what, reasons):
    r, took = while_another_waits(host, f"/send/{what}")
    body, text = failed(host, r, took)
    assert body["type"] == ("TypeError" if "JSON-serialisable" in reasons[0] else "InvalidParams"), body
    for reason in reasons:
        assert reason in body["message"] and reason in text, (reason, body, text)


def test_the_refusal_is_raised_at_the_call_and_the_handler_may_rescue_it(host):
    r, took = while_another_waits(host, "/send/rescued")
    assert r.status_code == 200, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    assert UNREADABLE in r.json()["message"], r.json()


def test_an_event_handler_storing_an_unsendable_value_is_retried_then_dead_lettered_saying_why(host):
    letter = dead_lettered(host, "ruby", "rb.unsendable", "RbStateEvent", TIMEOUT * 2)
    assert "state.set" in letter["error"] and UNREADABLE in letter["error"], letter
    assert "Timeout" not in letter["error"], letter


def test_a_log_record_with_values_json_cannot_carry_degrades_and_is_kept(host):
    r, took = while_another_waits(host, "/log/values")
    assert r.status_code == 200 and r.json() == {"logged": True}, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    records = wait_until(lambda: {rec["msg"]: rec.get("fields", {}) for rec in trace_logs(host, r.headers["x-trace-id"])
                                  if rec.get("source") == "logger"}, 5, "the log records")
    assert "after" in records, records
    huge = records.get("huge")
    assert huge is not None, records  # the record was lost before
    assert huge["ok"] == 1 and huge["w"] == str(2**70), huge
    assert huge["n"].startswith("1000") and len(huge["n"]) == 5001, huge["n"][:80]
    assert "Object" in huge["o"], huge
    [unreadable] = [fields for msg, fields in records.items() if fields.get("ok") == 2]
    assert "Object" in str(unreadable["u"]), unreadable


# ---- 2. exceptions the runner cannot describe ----

@pytest.mark.parametrize(("how", "kind", "reasons"), [
    ("message", "RuntimeError", ["could not be read", "message boom"]),  # the runner exited 1 before (502)
    ("to_s", "RuntimeError", ["could not be read", "to_s boom"]),
    ("backtrace", "ArgumentError", ["a readable message"]),
    ("all", "RuntimeError", ["could not be read"]),
])
def test_an_exception_that_cannot_describe_itself_answers_500_and_the_runner_lives(host, how, kind, reasons):
    r, took = while_another_waits(host, f"/raise/{how}")
    body, text = failed(host, r, took)
    assert body["type"] == kind, body
    assert f"handler failed: {kind}" in text, text
    for reason in reasons:
        assert reason in body["message"] and reason in text, (reason, body, text)


def test_an_event_handler_raising_an_unreadable_exception_is_dead_lettered_with_its_class(host):
    # `ConnectionLost: runner closed its stdout` before
    letter = dead_lettered(host, "ruby", "rb.unreadable", "RbRaiseEvent", TIMEOUT * 3)
    assert letter["error"].startswith("RuntimeError") and "could not be read" in letter["error"], letter
    assert "event message boom" in letter["error"], letter


# ---- 3. a handler ending its own thread, or signalling its runner ----

@pytest.mark.parametrize("how", ["kill", "exit"])
def test_a_handler_that_ends_its_own_thread_answers_500_at_once(host, how):
    r, took = while_another_waits(host, f"/thread/{how}")  # 504 after the timeout before
    body, text = failed(host, r, took)
    assert "ended its thread" in body["message"] and "ended its thread" in text, (body, text)
    r, _ = post(host, "/thread/ok")
    assert r.status_code == 200 and r.json() == {"pid": host.runner_pid("ruby")}, r.text


def test_sigint_sent_by_a_handler_to_its_runner_is_ignored(host):
    r, took = while_another_waits(host, "/thread/int")  # 502 and a restart before
    assert r.status_code == 200, r.text
    assert r.json() == {"pid": host.runner_pid("ruby")}
    assert took < QUICK, f"answered after {took:.1f}s"


# ---- 4. logging text that is not valid UTF-8 ----

def test_logging_invalid_utf8_never_raises_and_keeps_the_text_repaired(host):
    r, took = while_another_waits(host, "/log/utf8")  # 500 ArgumentError (invalid byte sequence) before
    assert r.status_code == 200 and r.json() == {"logged": True}, r.text
    assert took < QUICK, f"answered after {took:.1f}s"
    records = wait_until(lambda: {rec["msg"]: rec for rec in trace_logs(host, r.headers["x-trace-id"])},
                         5, "the log records")
    assert "printed \ufffd line" in records, list(records)
    assert "bad \ufffd msg" in records, list(records)
    assert records["bad \ufffd msg"]["fields"] == {"f": "x\ufffd", "k\ufffd": 1, "nested": ["y\ufffd"]}, records
    assert "bad \ufffd words" in records, list(records)
    assert "se\ufffdcret" not in str(records["bad \ufffd words"]), records  # still redacted
