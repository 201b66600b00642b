"""Python handler faults that the runner turned into protocol errors, silent successes or a crash, against a
real host and its Python runner.

Seen: an exception whose text holds a lone surrogate (`ValueError("bad \\ud800")`), or whose `__str__` fails,
was answered as `InvalidParams: bad params for invoke: TypeError('str is not valid UTF-8 ...')`, losing the
handler's exception type and traceback (the same in the dead-letter store); lone surrogates in a body, a
state value or emitted data failed the handler, and in a log line became `?`. A generator handler (`yield`
in it) never ran and its delivery counted as a success. `logger.info("x", {"n": 10**5000})` raised in the
handler. `asyncio.get_running_loop().stop()` in a handler crashed the runner (502). `headers: ["a", "b"]`
failed with `dictionary update sequence element #0 ...`, and `headers: {None: "n"}` sent a header `null`."""

from __future__ import annotations

import httpx
import pytest

from conftest import RunningHost, wait_until, write_project

PROJECT = {
    "steps/raise_step.py": r'''
        import asyncio

        config = {"type": "api", "name": "Raise", "path": "/raise/:how", "method": "GET", "emits": []}

        class IntStr(Exception):
            def __str__(self):
                return 42

        async def handler(req, ctx):
            how = req["pathParams"]["how"]
            if how == "later":
                await asyncio.sleep(0.01)  # the error leaves a task that already suspended
            if how == "badstr":
                raise IntStr("x")
            raise ValueError("bad \ud800 value")
    ''',
    "steps/raise_sync_step.py": r'''
        config = {"type": "api", "name": "RaiseSync", "path": "/raise-sync", "method": "GET", "emits": []}

        def handler(req, ctx):
            raise ValueError("bad \ud800 sync")
    ''',
    "steps/dead_step.py": r'''
        config = {"type": "event", "name": "Dead", "subscribes": ["lone.raise"], "emits": [],
                  "infrastructure": {"queue": {"maxRetries": 2}}}

        async def handler(data, ctx):
            raise ValueError("bad \ud800 event")
    ''',
    "steps/send_step.py": r'''
        config = {"type": "api", "name": "Send", "path": "/send/:what", "method": "GET", "emits": []}

        async def handler(req, ctx):
            what = req["pathParams"]["what"]
            if what == "body":
                return {"status": 200, "body": {"s": "a\ud800b", "pair": "\ud83d\ude00", "\udc00k": 1}}
            if what == "header":
                return {"status": 200, "headers": {"x-s": "a\ud800"}, "body": "ok"}
            if what == "state":
                await ctx.state.set("lone", "k", {"v": "a\ud800"})
                return await ctx.state.get("lone", "k")
            if what == "emit":
                await ctx.emit({"topic": "lone.data", "data": {"v": "e\ud800"}})
                return {"emitted": True}
            if what == "read":
                return await ctx.state.get("lone", "emitted")
            if what == "log":
                ctx.logger.info("log \ud800 msg", {"f": "x\ud800", "\ud800k": 1})
                print("print \ud800 line")
                return {"logged": True}
    ''',
    "steps/send_sync_step.py": r'''
        config = {"type": "api", "name": "SendSync", "path": "/send-sync", "method": "GET", "emits": []}

        def handler(req, ctx):
            ctx.state.set("lone", "sync", ["s\ud800"])
            return ctx.state.get("lone", "sync")
    ''',
    "steps/listen_step.py": '''
        config = {"type": "event", "name": "Listen", "subscribes": ["lone.data"], "emits": []}

        async def handler(data, ctx):
            await ctx.state.set("lone", "emitted", data)
    ''',
    "steps/log_step.py": '''
        config = {"type": "api", "name": "Log", "path": "/log", "method": "GET", "emits": []}

        class BadStr:
            def __str__(self):
                return 42

            def __repr__(self):
                raise RuntimeError("no repr either")

        async def handler(req, ctx):
            ctx.logger.info("huge", {"n": 10**5000, "ok": 1})
            ctx.logger.warn("wide", n=10**40)
            ctx.logger.info(BadStr(), {"b": BadStr()})
            return {"logged": True}
    ''',
    "steps/stop_step.py": '''
        import asyncio, os

        config = {"type": "api", "name": "Stop", "path": "/stop/:how", "method": "GET", "emits": []}

        async def handler(req, ctx):
            how = req["pathParams"]["how"]
            loop = asyncio.get_running_loop()
            if how == "now":
                loop.stop()
            if how == "soon":
                loop.call_soon(loop.stop)
                await asyncio.sleep(0.05)
            return {"pid": os.getpid()}
    ''',
    "steps/headers_step.py": '''
        config = {"type": "api", "name": "Headers", "path": "/headers/:how", "method": "GET", "emits": []}

        async def handler(req, ctx):
            how = req["pathParams"]["how"]
            if how == "list":
                return {"status": 200, "headers": ["a", "b"], "body": "x"}
            if how == "none":
                return {"status": 200, "headers": {None: "n"}, "body": "x"}
            if how == "int":
                return {"status": 200, "headers": {1: "n"}, "body": "x"}
            return {"status": 200, "headers": {"x-ok": "1"}, "body": "x"}
    ''',
    "steps/gen_event_step.py": '''
        config = {"type": "event", "name": "GenEvent", "subscribes": ["gen.run"], "emits": []}

        async def handler(data, ctx):
            print("ran")
            yield 1
    ''',
    "steps/gen_api_step.py": '''
        config = {"type": "api", "name": "GenApi", "path": "/gen", "method": "GET", "emits": []}

        def handler(req, ctx):
            ctx.state.set("gen", "k", 1)
            yield
    ''',
    "steps/gen_wrapped_step.py": '''
        config = {"type": "event", "name": "GenWrapped", "subscribes": ["gen.wrapped"], "emits": [],
                  "infrastructure": {"queue": {"maxRetries": 1}}}

        def plain(fn):
            def wrapper(*args):  # no functools.wraps: only the call can tell
                return fn(*args)
            return wrapper

        @plain
        def handler(data, ctx):
            ctx.state.set("gen", "wrapped", 1)
            yield
    ''',
}

ENV = {"STEPPE_API_TIMEOUT": "5", "STEPPE_RETRY_BASE": "0.05", "STEPPE_RETRY_CAP": "0.2"}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    running = RunningHost(write_project(tmp_path_factory.mktemp("unsendable"), PROJECT), [], ENV).wait_ready()
    yield running
    running.stop()


def logs_of(host, trace: str) -> list[dict]:
    return host.admin_get("/__steppe/logs", params={"traceId": trace, "limit": 200}, timeout=10).json()


def failed(host, r: httpx.Response) -> tuple[dict, list[str]]:
    """A handler failure's 500 answer and the messages logged for its trace."""
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["error"] == "Internal Server Error" and body["traceId"], body
    return body, [rec["msg"] for rec in logs_of(host, body["traceId"])]


def dlq(host, step: str) -> list[dict]:
    return httpx.get(f"{host.url}/__steppe/dlq", params={"step": step}, timeout=10).json()


def emit(host, topic: str, data) -> None:
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": topic, "data": data}, timeout=10)
    assert r.status_code == 202, r.text


# -- 1. error texts and data with lone surrogates --------------------------------------------------------------

@pytest.mark.parametrize(("path", "kind", "message"), [
    ("/raise/now", "ValueError", "bad \ufffd value"),
    ("/raise/later", "ValueError", "bad \ufffd value"),
    ("/raise-sync", "ValueError", "bad \ufffd sync"),
    ("/raise/badstr", "IntStr", "<exception str() failed>"),
])
def test_an_exception_whose_text_cannot_be_sent_is_reported_as_itself(host, path, kind, message):
    pid = host.runner_pid("python")
    body, logged = failed(host, httpx.get(f"{host.url}{path}", timeout=15))  # "later" hung until 504 before
    assert body["type"] == kind and body["message"] == message, body  # was InvalidParams: bad params for invoke
    assert f"handler failed: {kind}: {message}" in logged, logged
    [record] = [rec for rec in logs_of(host, body["traceId"]) if rec["msg"].startswith("handler failed")]
    assert "_step.py" in record["fields"]["stack"], record  # the handler's own traceback
    assert host.runner_pid("python") == pid


def test_an_event_handler_whose_error_text_cannot_be_sent_is_dead_lettered_with_its_real_error(host):
    emit(host, "lone.raise", {"n": 1})
    [letter] = wait_until(lambda: dlq(host, "Dead"), 20, "a dead letter")
    assert letter["error"] == "ValueError: bad \ufffd event", letter
    assert letter["attempts"] == 2 and "dead_step.py" in letter["stack"], letter


def test_lone_surrogates_in_what_a_handler_sends_become_replacement_characters(host):
    pid = host.runner_pid("python")
    r = httpx.get(f"{host.url}/send/body", timeout=10)
    assert r.status_code == 200, r.text  # a TypeError before
    assert r.json() == {"s": "a\ufffdb", "pair": "\U0001f600", "\ufffdk": 1}  # a valid pair stays one character
    r = httpx.get(f"{host.url}/send/state", timeout=10)
    assert r.status_code == 200 and r.json() == {"v": "a\ufffd"}, r.text
    r = httpx.get(f"{host.url}/send-sync", timeout=10)
    assert r.status_code == 200 and r.json() == ["s\ufffd"], r.text
    r = httpx.get(f"{host.url}/send/emit", timeout=10)
    assert r.status_code == 200 and r.json() == {"emitted": True}, r.text
    wait_until(lambda: httpx.get(f"{host.url}/send/read", timeout=10).status_code == 200, 10, "the emitted event")
    assert httpx.get(f"{host.url}/send/read", timeout=10).json() == {"v": "e\ufffd"}
    # a header value: repaired, then refused by the host as any header value outside latin-1 (500, the reason
    # in the log), not as data the runner could not encode
    body, logged = failed(host, httpx.get(f"{host.url}/send/header", timeout=10))
    assert "not JSON-serialisable" not in body["message"], body
    assert any(m.startswith("handler failed") for m in logged), logged
    assert host.runner_pid("python") == pid


def test_lone_surrogates_in_log_lines_and_prints_arrive_repaired(host):
    r = httpx.get(f"{host.url}/send/log", timeout=10)
    assert r.status_code == 200, r.text
    records = {rec["msg"]: rec for rec in logs_of(host, r.headers["x-trace-id"])}
    assert "log \ufffd msg" in records, list(records)  # "log ? msg" before
    assert records["log \ufffd msg"]["fields"] == {"f": "x\ufffd", "\ufffdk": 1}, records["log \ufffd msg"]
    assert "print \ufffd line" in records, list(records)


# -- 2. generator handlers ----------------------------------------------------------------------------------------

def test_a_generator_handler_fails_to_load_with_its_path_and_the_reason(host):
    rows = {s["path"]: s for s in httpx.get(f"{host.url}/__steppe/steps", timeout=10).json()["steps"]}
    for path, kind in (("steps/gen_event_step.py", "an async generator"), ("steps/gen_api_step.py", "a generator")):
        row = rows[path]
        assert row["status"] == "error", row  # loaded as a step that never runs before
        assert f"`handler` is {kind} function" in row["error"] and "yield" in row["error"], row
        host.wait_log(f"failed to load {path}: ConfigError: `handler` is {kind} function")
    r = httpx.get(f"{host.url}/gen", timeout=10)
    assert r.status_code == 503 and "generator" in r.json()["loadError"], r.text


def test_a_handler_that_returns_a_generator_fails_at_the_call(host):
    emit(host, "gen.wrapped", {"n": 1})
    [letter] = wait_until(lambda: dlq(host, "GenWrapped"), 20, "a dead letter")  # a silent success before
    assert letter["error"].startswith("TypeError: the handler returned a generator"), letter


# -- 3. logging never raises ---------------------------------------------------------------------------------------

def test_log_fields_that_cannot_be_encoded_degrade_and_never_fail_the_handler(host):
    pid = host.runner_pid("python")
    r = httpx.get(f"{host.url}/log", timeout=10)
    assert r.status_code == 200 and r.json() == {"logged": True}, r.text  # 500 ValueError (4300 digits) before
    records = {rec["msg"]: rec["fields"] for rec in logs_of(host, r.headers["x-trace-id"])}
    assert records["huge"]["ok"] == 1, records
    assert "int" in records["huge"]["n"] and "5001 digits" in records["huge"]["n"], records
    assert records["wide"] == {"n": str(10**40)}, records
    [bad] = [fields for msg, fields in records.items() if "BadStr" in msg]
    assert "BadStr" in str(bad["b"]), bad
    assert host.runner_pid("python") == pid


# -- 4. a handler stopping the event loop -------------------------------------------------------------------------

def test_a_handler_stopping_the_event_loop_fails_alone(host):
    pid = host.runner_pid("python")
    body, logged = failed(host, httpx.get(f"{host.url}/stop/now", timeout=10))  # 502 and a restart before
    assert body["type"] == "RuntimeError" and "event loop" in body["message"], body
    assert any("handler failed: RuntimeError" in m for m in logged), logged
    assert httpx.get(f"{host.url}/stop/soon", timeout=10).json() == {"pid": pid}  # stop() from a callback
    assert httpx.get(f"{host.url}/stop/ok", timeout=10).json() == {"pid": pid}
    assert host.runner_pid("python") == pid


# -- 5. response headers ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("how", "message"), [
    ("list", "the handler returned headers as an array: expected an object"),
    ("none", "the handler returned a header name None (NoneType): header names are strings"),
    ("int", "the handler returned a header name 1 (int): header names are strings"),
])
def test_response_headers_that_are_not_an_object_of_names_answer_500_saying_why(host, how, message):
    pid = host.runner_pid("python")
    body, logged = failed(host, httpx.get(f"{host.url}/headers/{how}", timeout=10))  # 200 with `null:` before
    assert body["message"] == message and body["type"] == "TypeError", body
    assert any(message in m for m in logged), logged
    assert httpx.get(f"{host.url}/headers/ok", timeout=10).headers["x-ok"] == "1"
    assert host.runner_pid("python") == pid
