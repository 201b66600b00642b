"""The HTTP edge of one real `steppe dev` host: header and nesting limits, handler results with invalid
statuses, 404/405/HEAD, JSON errors with trace ids, the OpenAPI document, 503 while a runner is down."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import RunningHost, wait_until, write_project

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "fake_runner.py"

PROJECT = {
    "steppe.toml": f'''
        [runners.fake]
        command = ["{sys.executable}", "{FAKE}", "crash"]
        extensions = [".fake"]
    ''',
    "steps/fake_crash.step.fake": '{"type": "api", "name": "FakeCrash", "path": "/fake", "method": "GET", '
                                  '"emits": []}',
    "steps/echo_step.py": '''
        config = {"type": "api", "name": "Echo", "path": "/echo", "method": "POST", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": {"got": type(req["body"]).__name__}}
    ''',
    "steps/echo_get_step.py": '''
        config = {"type": "api", "name": "EchoGet", "path": "/echo", "method": "GET", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": {"get": True}, "headers": {"x-step": "echo-get"}}
    ''',
    "steps/headers_step.py": '''
        config = {"type": "api", "name": "Headers", "path": "/headers", "method": "GET", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": req["headers"]}
    ''',
    "steps/query_step.py": '''
        config = {"type": "api", "name": "Query", "path": "/query", "method": "GET", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": req["queryParams"]}
    ''',
    "steps/schema_step.py": '''
        config = {"type": "api", "name": "Schema", "path": "/schema", "method": "POST", "emits": [],
                  "bodySchema": {"type": "object", "properties": {"a": {"type": "array"}}}}
        async def handler(req, ctx):
            return {"status": 201, "body": {"ok": True}}
    ''',
    "steps/status_step.py": '''
        config = {"type": "api", "name": "Status", "path": "/status", "method": "POST", "emits": []}
        async def handler(req, ctx):
            if "headers" in req["body"]:
                return {"status": 200, "headers": req["body"]["headers"], "body": {}}
            return {"status": req["body"]["status"], "body": {"s": req["body"]["status"]}}
    ''',
}


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> RunningHost:
    running = RunningHost(write_project(tmp_path_factory.mktemp("edge"), PROJECT), [], None).wait_ready()
    yield running
    running.stop()


def assert_json_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["traceId"] and r.headers["x-trace-id"] == body["traceId"]
    return body


def nested(depth: int, key: bool = False) -> str:
    return ('{"a":' * depth + "1" + "}" * depth) if key else ("[" * depth + "]" * depth)


def test_oversized_headers_answer_json_431(host):
    body = assert_json_error(httpx.get(f"{host.url}/echo", headers={"x-big": "a" * 70_000}), 431)
    assert body["limit"] == 64 * 1024
    assert httpx.get(f"{host.url}/echo", headers={"x-big": "a" * 60_000}).status_code == 200


@pytest.mark.parametrize("size", [64_600])  # past the 414 bound, but read whole: no reset
def test_a_request_line_too_long_answers_json_414(host, size):
    """Seen: a 66 KB URL got `400 not a valid HTTP/1.1 request (Invalid HTTP request received.)`; a request
    line between 63 KiB and httptools' own limit (~64 KiB) is refused 414 before the parser sees it."""
    with socket.create_connection(("127.0.0.1", host.port), timeout=10) as sock:
        sock.sendall(b"GET /echo?q=" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except ConnectionResetError:  # the host closed while this client was still sending
            pass
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 "), raw[:200]
    answer = orjson.loads(body)
    assert answer["error"] == "URI Too Long" and answer["limit"] == 63 * 1024 and answer["traceId"]
    assert httpx.get(f"{host.url}/echo", params={"q": "a" * 60_000}).status_code == 200


def test_huge_headers_cannot_take_the_python_runner_down(host):
    """Seen: five requests with a 68 MB header crashed the Python runner five times; it was not restarted."""
    for _ in range(5):
        try:
            r = httpx.get(f"{host.url}/echo", headers={"x-big": "a" * (68 * 1024 * 1024)}, timeout=60)
            assert r.status_code in (400, 431)
        except httpx.HTTPError:
            pass  # refused by the HTTP parser before the host: also fine, as long as nothing reached the runner
    assert httpx.get(f"{host.url}/echo").json() == {"get": True}
    assert host.runners()["runners"]["python"]["restarts"] == 0


@pytest.mark.parametrize("depth", [600, 1024])
@pytest.mark.parametrize("path", ["/echo", "/schema"])
@pytest.mark.parametrize("key", [False, True])
def test_too_deep_json_answers_400(host, path, depth, key):
    """Seen: 252-1,024 levels answered 500 `Recursion limit reached`; ~1,000 on a bodySchema step, a
    plain-text 500 with no trace id."""
    r = httpx.post(f"{host.url}{path}", content=nested(depth, key), headers={"content-type": "application/json"})
    body = assert_json_error(r, 400)
    assert body["limit"] == 512 and "deep" in body["reason"]


@pytest.mark.parametrize("depth", [300, 500])
def test_json_within_the_depth_limit_reaches_the_handler(host, depth):
    r = httpx.post(f"{host.url}/echo", content=nested(depth, key=True), headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json() == {"got": "dict"}, r.text
    r = httpx.post(f"{host.url}/schema", content='{"a": ' + nested(depth - 1) + "}",
                   headers={"content-type": "application/json"})
    assert r.status_code in (201, 400) and r.headers["content-type"] == "application/json", r.text


@pytest.mark.parametrize("status", [999, "abc", 99, 600, 0, True, "2OO", 100, 101, 199])
def test_invalid_handler_status_answers_500_json_and_logs_why(host, status):
    """Seen: a handler returning status 999 made uvicorn raise KeyError: 999; the client got no answer."""
    r = httpx.post(f"{host.url}/status", json={"status": status})
    body = assert_json_error(r, 500)
    records = wait_until(lambda: [rec for rec in httpx.get(f"{host.url}/__steppe/logs",
                                                            params={"traceId": body["traceId"]}).json()
                                  if rec["level"] == "error"], 5, "the error record")
    assert records[0]["step"] == "Status" and "status" in records[0]["msg"] and repr(status) in records[0]["msg"]


def test_handler_header_values_are_sent_as_motia_sent_them(host):
    """As Motia (Express's res.set): a list is one header line per item (two cookies), numbers and booleans
    as JavaScript writes them. Seen: `Set-Cookie: ['a=1; Path=/', 'b=2; Path=/']` in one line (no cookie set),
    `x-flag: True`."""
    r = httpx.post(f"{host.url}/status", json={"headers": {
        "Set-Cookie": ["a=1; Path=/", "b=2; Path=/"], "x-count": 5, "x-ratio": 1.5, "x-whole": 2.0,
        "x-flag": True, "x-off": False, "x-none": None}})
    assert r.status_code == 200, r.text
    assert r.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert r.cookies["a"] == "1" and r.cookies["b"] == "2"
    assert (r.headers["x-count"], r.headers["x-ratio"], r.headers["x-whole"]) == ("5", "1.5", "2")
    assert (r.headers["x-flag"], r.headers["x-off"]) == ("true", "false")
    assert "x-none" not in r.headers


def test_repeated_request_headers_reach_the_handler_as_node_merges_them(host):
    """Seen: only the last of repeated headers reached the handler (`x-forwarded-for: b`, `cookie: b=2`)."""
    got = httpx.get(f"{host.url}/headers", headers=[
        ("x-forwarded-for", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2"), ("cookie", "a=1"), ("cookie", "b=2"),
        ("user-agent", "first"), ("user-agent", "second")]).json()
    assert got["x-forwarded-for"] == "10.0.0.1, 10.0.0.2"
    assert got["cookie"] == "a=1; b=2"
    assert got["user-agent"] == "first"  # a header that holds one value keeps the first, as in Node


@pytest.mark.parametrize("headers", [["x-a", "1"], "x-a: 1", {"x-a": "line\r\nx-b: injected"},
                                     {"x-a": ["ok", "line\r\nx-b: injected"]}, {"x-a": {"nested": 1}}])
def test_invalid_handler_headers_answer_500_json(host, headers):
    r = httpx.post(f"{host.url}/status", json={"headers": headers})
    assert_json_error(r, 500)
    assert "x-b" not in r.headers


@pytest.mark.parametrize("request_bytes", [b"GET /echo HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
                                           b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"],  # TLS hello
                         ids=["header-without-colon", "tls-on-the-http-port"])
def test_a_request_that_is_not_http_is_answered_json_400(host, request_bytes):
    """uvicorn answered these in plain text (`Invalid HTTP request received.`)."""
    with socket.create_connection(("127.0.0.1", host.port), timeout=10) as sock:
        sock.sendall(request_bytes)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), raw
    assert b"content-type: application/json" in head.lower()
    answer = orjson.loads(body)
    assert answer["error"] == "Bad Request" and "not a valid HTTP/1.1 request" in answer["reason"]
    assert answer["traceId"]


def test_head_works_wherever_get_does(host):
    for path in ["/echo", "/openapi.json", "/__steppe/health", "/__steppe/steps"]:
        get, head = httpx.get(host.url + path), httpx.head(host.url + path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
    assert httpx.head(f"{host.url}/echo").headers["x-step"] == "echo-get"


def test_405_carries_allow_and_404_is_json(host):
    r = httpx.put(f"{host.url}/echo")
    body = assert_json_error(r, 405)
    assert body["error"] == "Method Not Allowed"
    assert sorted(m.strip() for m in r.headers["allow"].split(",")) == ["GET", "HEAD", "POST"]
    assert r.headers.get_list("allow") == [r.headers["allow"]]
    assert "POST" in httpx.delete(f"{host.url}/schema").headers["allow"]
    assert_json_error(httpx.get(f"{host.url}/no/such/path"), 404)
    assert_json_error(httpx.post(f"{host.url}/schema", json={"a": "not an array"}), 400)
    assert_json_error(httpx.post(f"{host.url}/schema", content=b"{nope", headers={"content-type": "application/json"}),
                      400)


def test_openapi_documents_every_status_the_host_answers(host):
    doc = httpx.get(f"{host.url}/openapi.json").json()
    for path, method in [("/echo", "post"), ("/schema", "post"), ("/status", "post")]:
        codes = set(doc["paths"][path][method]["responses"])
        assert {"400", "404", "405", "413", "431", "500", "502", "503", "504"} <= codes, (path, codes)


def test_a_down_runner_answers_503_with_retry_after(host):
    """The fake runner exits at every invoke: once it is down its step answers 503 with Retry-After."""
    def refused() -> httpx.Response | None:
        r = httpx.get(f"{host.url}/fake", timeout=10)
        assert r.status_code in (502, 503, 504), r.text
        return r if r.status_code == 503 else None

    r = wait_until(refused, 30, "a 503", step=0.2)
    assert int(r.headers["retry-after"]) > 0
    assert_json_error(r, 503)
    assert httpx.get(f"{host.url}/echo").status_code == 200


# '²' and '٣' are digits to str.isdigit() but not to int() (or to qs, which reads only 0-9)
@pytest.mark.parametrize("path", ["/__steppe/logs?limit=%C2%B2", "/__steppe/emitted?limit=%C2%B2",
                                  "/__steppe/logs?limit=" + "9" * 5000, "/__steppe/dlq/" + "9" * 5000])
def test_admin_numbers_in_other_digits_or_past_int_answer_400(host, path):
    """Seen: 500 for `limit=²` on every admin and Workbench listing, and for a dead-letter id of 5,000
    digits (int() refuses over 4,300)."""
    assert "limit" in assert_json_error(httpx.get(host.url + path), 400)["error"] or "dlq" in path


@pytest.mark.parametrize("path", ["/__steppe/api/logs?limit=%C2%B2", "/__steppe/api/logs?before=%C2%B2",
                                  "/__steppe/api/logs?before=99999999999999999999999",
                                  "/__steppe/api/traces?limit=%C2%B2", "/__steppe/api/traces?limit=" + "9" * 5000])
def test_workbench_listings_take_any_page_value(host, path):
    """Seen: 500 for `limit=²` and for `before=99999999999999999999999` (past SQLite's integers)."""
    r = httpx.get(host.url + path)
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), list)


def test_bracket_names_with_other_digits_are_object_keys(host):
    """Seen: `?a[²]=1` made every API step answer 500, as a client chose."""
    r = httpx.get(host.url + "/query?a[%C2%B2]=1&b[0]=x&c[%D9%A3]=y")
    assert r.status_code == 200, r.text
    assert r.json() == {"a": {"²": "1"}, "b": ["x"], "c": {"٣": "y"}}


@pytest.mark.parametrize("framing", [{"Content-Length": 1}, {"content-length": "50"}, {"Transfer-Encoding": "chunked"},
                                     {"Content-Length": 2, "Transfer-Encoding": "chunked"}])
def test_a_handlers_framing_headers_give_way_to_the_bodys_own(host, framing):
    """Seen: a handler's `Content-Length` that did not match its body cut the answer or left the client waiting
    (curl: exit 18; uvicorn logged 'Response content longer than Content-Length' with no step or trace id), and
    `Transfer-Encoding: chunked` was sent beside a Content-Length, which clients refuse. The host frames the body
    itself: these headers of a handler are not sent."""
    with httpx.Client(base_url=host.url, timeout=5) as client:
        for _ in range(2):  # the same kept-alive connection lives on
            r = client.post("/status", json={"headers": {**framing, "x-kept": "yes"}})
            assert (r.status_code, r.json(), r.headers["x-kept"]) == (200, {}, "yes")
            assert r.headers["content-length"] == "2" and "transfer-encoding" not in r.headers


def test_a_header_value_http_cannot_carry_is_named_in_the_log(host):
    """Seen: a header value with '☃' answered 500 with "'latin-1' codec can't encode character" in the log,
    naming no header."""
    r = httpx.post(f"{host.url}/status", json={"headers": {"x-fine": "café", "x-snow": "héllo ☃"}})
    body = assert_json_error(r, 500)
    records = wait_until(lambda: [rec for rec in httpx.get(f"{host.url}/__steppe/logs",
                                                            params={"traceId": body["traceId"]}).json()
                                  if rec["level"] == "error"], 5, "the error record")
    assert "header 'x-snow'" in records[0]["msg"] and "latin-1" in records[0]["msg"], records[0]["msg"]


@pytest.mark.parametrize("status", [204, 304])
def test_a_no_body_status_with_a_body_is_sent_without_it_and_the_connection_lives(host, status):
    """Seen: a handler answering `{status: 204, body: {...}}` (or a Python handler's `{"status": 204}`, which
    the runner sends with `body: null`) made uvicorn raise 'Response content longer than Content-Length' and
    drop the connection: the client's next request on it was reset."""
    with httpx.Client(base_url=host.url) as client:
        for _ in range(3):  # the same kept-alive connection each time
            r = client.post("/status", json={"status": status})
            assert r.status_code == status and r.content == b"", r
            assert "content-type" not in r.headers
        assert client.post("/status", json={"status": 201}).json() == {"s": 201}
