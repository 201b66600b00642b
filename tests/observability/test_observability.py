"""docs/observability.md followed as written against a real `steppe start` host of examples/polyglot-hello:
its steppe.toml sends spans to an in-process OTLP/HTTP collector (a small HTTP server decoding the protobuf
the real exporter sends), and its curl command scrapes the Prometheus metrics."""

from __future__ import annotations

import gzip
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from conftest import ADMIN_TOKEN, REPO, RunningHost, need, wait_until, write_project

DOC = (REPO / "docs" / "observability.md").read_text()
EXAMPLE = REPO / "examples" / "polyglot-hello"


def copy_example(root: Path) -> Path:
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("node_modules", ".steppe"))
    (root / "node_modules").symlink_to(EXAMPLE / "node_modules")
    return root


class Collector:
    """Receives OTLP/HTTP trace exports on 127.0.0.1 and keeps every span as a plain dict."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.paths: set[str] = set()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                collector.paths.add(self.path)
                collector.take(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append({
                        "name": span.name, "trace": span.trace_id.hex(), "id": span.span_id.hex(),
                        "parent": span.parent_span_id.hex(), "kind": span.kind, "status": span.status.code,
                        "attributes": {a.key: _value(a.value) for a in span.attributes},
                        "events": [(e.name, {a.key: _value(a.value) for a in e.attributes}) for e in span.events],
                        "service": resource.get("service.name")})

    def of_trace(self, trace_id: str) -> list[dict[str, Any]]:
        return [s for s in list(self.spans) if s["trace"] == trace_id]

    def wait_for(self, trace_id: str, count: int, what: str) -> list[dict[str, Any]]:
        """The trace's spans once `count` of them arrived (and a little longer, to see any extra one)."""
        wait_until(lambda: len(self.of_trace(trace_id)) >= count, 15, what)
        time.sleep(0.3)
        return self.of_trace(trace_id)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


BOOM = """
# fails on every attempt: two attempts, then the dead-letter store
config = {"type": "event", "name": "Boom", "subscribes": ["boom"], "emits": [],
          "infrastructure": {"queue": {"maxRetries": 2}}}


async def handler(input, context):
    raise RuntimeError("boom " + input["why"])
"""


def doc_block(lang: str, containing: str) -> str:
    blocks = [b for b in re.findall(rf"```{lang}\n(.*?)```", DOC, re.S) if containing in b]
    assert len(blocks) == 1, f"one ```{lang} block with {containing!r} in docs/observability.md"
    return blocks[0]


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.server.shutdown()


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[RunningHost]:
    need("ruby")
    root = copy_example(tmp_path_factory.mktemp("otel") / "polyglot-hello")
    toml = doc_block("toml", "otel_endpoint").replace("http://localhost:4318", collector.url)
    write_project(root, {"steppe.toml": toml + "retry_base = 0.05\n", "steps/boom_step.py": BOOM})
    # the batch goes out every 100 ms instead of 5 s, so the test waits less
    h = RunningHost(root, [], {"OTEL_BSP_SCHEDULE_DELAY": "100"}, mode="start").wait_ready()
    yield h
    h.stop()


def hello(host: RunningHost, name: str) -> str:
    r = httpx.post(f"{host.url}/hello", json={"name": name}, timeout=10)
    assert r.status_code == 202, r.text
    return str(r.json()["traceId"])


def test_spans_follow_the_ts_python_ruby_flow(host: RunningHost, collector: Collector) -> None:
    trace = hello(host, "Ada")
    spans = collector.wait_for(trace, 3, "the three spans of the hello flow at the collector")
    by_step = {s["attributes"]["steppe.step"]: s for s in spans}
    assert len(spans) == 3 and set(by_step) == {"SayHello", "MakeGreeting", "ArchiveGreeting"}, spans
    api, greet, archive = by_step["SayHello"], by_step["MakeGreeting"], by_step["ArchiveGreeting"]
    assert api["parent"] == "" and api["name"] == "api SayHello"
    assert greet["parent"] == api["id"] and archive["parent"] == greet["id"]  # child of the emitting invocation
    assert [s["attributes"]["steppe.language"] for s in (api, greet, archive)] == ["node", "python", "ruby"]
    assert [s["attributes"]["steppe.trigger"] for s in (api, greet, archive)] == ["api", "event", "event"]
    assert greet["attributes"]["steppe.topic"] == "greeting.requested"
    assert archive["attributes"]["steppe.topic"] == "greeting.created"
    assert greet["attributes"]["steppe.attempt"] == 1 and greet["attributes"]["steppe.flows"] == ["hello"]
    assert {s["kind"] for s in (greet, archive)} == {5} and api["kind"] == 2  # CONSUMER, SERVER
    assert {s["status"] for s in spans} == {0}  # unset: no error
    assert {s["service"] for s in spans} == {"orders"}  # otel_service_name from the doc's steppe.toml
    assert collector.paths == {"/v1/traces"}


def test_an_api_call_continues_a_traced_callers_trace(host: RunningHost, collector: Collector) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = httpx.post(f"{host.url}/hello", json={"name": "Di"}, timeout=10,
                   headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"})
    assert r.status_code == 202 and r.json()["traceId"] == caller_trace == r.headers["x-trace-id"]
    spans = {s["attributes"]["steppe.step"]: s for s in collector.wait_for(caller_trace, 3, "the continued trace")}
    assert spans["SayHello"]["parent"] == caller_span
    assert spans["MakeGreeting"]["parent"] == spans["SayHello"]["id"]
    bad = httpx.post(f"{host.url}/hello", json={"name": "Ed"}, timeout=10,
                     headers={"traceparent": f"00-{'0' * 32}-{caller_span}-01"})  # invalid: a trace of its own
    assert bad.status_code == 202 and bad.json()["traceId"] != "0" * 32
    [root] = [s for s in collector.wait_for(bad.json()["traceId"], 3, "the new trace") if s["name"] == "api SayHello"]
    assert root["parent"] == ""


def test_a_cron_tick_is_a_span_of_its_own(host: RunningHost, collector: Collector) -> None:
    r = host.admin_post("/__steppe/api/cron/Heartbeat/run", timeout=10)  # the Workbench's "run now"
    assert r.status_code == 202, r.text
    [tick] = collector.wait_for(r.json()["traceId"], 1, "the Heartbeat tick's span")
    assert tick["name"] == "cron Heartbeat" and tick["parent"] == "" and tick["kind"] == 1  # INTERNAL
    assert tick["attributes"]["steppe.trigger"] == "cron" and tick["attributes"]["steppe.language"] == "node"
    assert "steppe.topic" not in tick["attributes"] and tick["status"] == 0


def test_a_failing_handler_is_recorded_on_its_spans(host: RunningHost, collector: Collector) -> None:
    r = host.admin_post("/__steppe/emit", json={"topic": "boom", "data": {"why": "on purpose"}}, timeout=10)
    assert r.status_code == 202, r.text
    trace = r.json()["traceId"]
    spans = collector.wait_for(trace, 2, "both failed attempts of Boom at the collector")
    assert sorted(s["attributes"]["steppe.attempt"] for s in spans) == [1, 2]
    for span in spans:
        assert span["name"] == "event Boom" and span["status"] == 2  # ERROR
        assert span["parent"] == ""  # emitted from outside any handler: each attempt starts the trace
        (name, attributes), = span["events"]
        assert name == "exception" and attributes["exception.type"] == "RuntimeError"
        assert attributes["exception.message"] == "boom on purpose"
        assert "boom_step.py" in attributes["exception.stacktrace"]


def scrape(host: RunningHost) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The doc's curl command, as written, against this host: {(sample, labels): value}."""
    command = doc_block("sh", "/__steppe/metrics").strip().replace("localhost:3000", host.url)
    out = subprocess.run(shlex.split(command.replace("$STEPPE_ADMIN_TOKEN", ADMIN_TOKEN)), check=True,
                         capture_output=True, text=True, timeout=10, env=os.environ).stdout
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(out) for s in family.samples}


def test_metrics_count_the_traffic(host: RunningHost) -> None:
    need("curl")
    assert httpx.get(f"{host.url}/__steppe/metrics").status_code == 401  # `start`: the admin token is asked for
    before = scrape(host)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    traces = [hello(host, n) for n in ("Bo", "Cy")]
    assert httpx.post(f"{host.url}/hello", json={"name": ""}, timeout=10).status_code == 400
    bad = host.admin_post("/__steppe/emit", json={"topic": "greeting.requested", "data": {"nope": 1}}, timeout=10)
    assert bad.status_code == 202  # fails MakeGreeting's input schema: straight to the dead-letter store
    archived = ("steppe_invocations_total", (("outcome", "ok"), ("step", "ArchiveGreeting"), ("trigger", "event")))
    wait_until(lambda: scrape(host).get(archived, 0) >= before.get(archived, 0) + 2, 15, "both archives")
    wait_until(lambda: scrape(host)[("steppe_queue_leased", ())] == 0, 10, "an idle queue")
    after = scrape(host)

    assert delta("steppe_requests_total", step="SayHello", method="POST", status="202") == 2
    assert delta("steppe_requests_total", step="SayHello", method="POST", status="400") == 1
    assert delta("steppe_invocations_total", step="SayHello", trigger="api", outcome="ok") == 2
    for step in ("MakeGreeting", "ArchiveGreeting"):
        assert delta("steppe_invocations_total", step=step, trigger="event", outcome="ok") == 2
        assert delta("steppe_deliveries_total", step=step, outcome="ok") == 2
        assert delta("steppe_invocation_duration_seconds_count", step=step, trigger="event") == 2
        assert delta("steppe_invocation_duration_seconds_bucket", step=step, trigger="event", le="+Inf") == 2
    assert delta("steppe_invocation_duration_seconds_sum", step="SayHello", trigger="api") > 0
    assert delta("steppe_dead_letters_total", step="MakeGreeting") == 1
    assert after[("steppe_queue_dead", ())] >= 1 and after[("steppe_queue_ready", ())] == 0
    assert after[("steppe_queue_oldest_due_seconds", ())] == 0
    assert after[("steppe_invocations_in_flight", ())] == 0
    assert len(traces) == 2


def test_metrics_count_failures_retries_and_dead_letters(host: RunningHost) -> None:
    before = scrape(host)
    r = host.admin_post("/__steppe/emit", json={"topic": "boom", "data": {"why": "again"}}, timeout=10)
    assert r.status_code == 202
    key = ("steppe_dead_letters_total", (("step", "Boom"),))
    wait_until(lambda: scrape(host).get(key, 0) > before.get(key, 0), 15, "Boom's dead letter")
    after = scrape(host)
    assert after[key] - before.get(key, 0) == 1
    errors = ("steppe_invocations_total", (("outcome", "error"), ("step", "Boom"), ("trigger", "event")))
    assert after[errors] - before.get(errors, 0) == 2
    retries = ("steppe_delivery_retries_total", (("step", "Boom"),))
    assert after[retries] - before.get(retries, 0) == 1


def test_metrics_show_runner_restarts_and_websocket_clients(host: RunningHost) -> None:
    import websockets.sync.client

    before = scrape(host)
    assert before[("steppe_runner_up", (("language", "ruby"),))] == 1
    with websockets.sync.client.connect(host.url.replace("http", "ws") + "/",
                                        additional_headers=host.admin_headers) as ws:
        ws.send('{"type": "join", "data": {"streamName": "greetings", "groupId": "all", "subscriptionId": "s"}}')
        ws.recv(timeout=5)
        assert scrape(host)[("steppe_websocket_clients", ())] == before[("steppe_websocket_clients", ())] + 1
    wait_until(lambda: scrape(host)[("steppe_websocket_clients", ())] == before[("steppe_websocket_clients", ())],
               5, "the socket to be counted out")

    os.kill(host.runner_pid("ruby"), signal.SIGKILL)
    key = ("steppe_runner_restarts_total", (("language", "ruby"),))
    wait_until(lambda: scrape(host).get(key, 0) == before.get(key, 0) + 1, 15, "the ruby runner's restart")
    wait_until(lambda: scrape(host)[("steppe_runner_up", (("language", "ruby"),))] == 1, 15, "ruby up again")
    assert scrape(host)[("steppe_runner_restarts_total", (("language", "python"),))] == 0


PING = """
config = {"type": "api", "name": "Ping", "path": "/ping", "method": "GET", "emits": ["pinged"]}

async def handler(req, context):
    await context.emit({"topic": "pinged", "data": {}})
    return {"status": 200, "body": "pong"}
"""
PONG = """
config = {"type": "event", "name": "Pong", "subscribes": ["pinged"], "emits": []}

async def handler(input, context):
    pass
"""


def test_the_standard_env_variables_and_no_workbench_telemetry(tmp_path: Path, start_host: Any,
                                                               collector: Collector) -> None:
    """The doc's env line, as written: OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME; with the Workbench's
    telemetry off, the recorder still feeds the spans and the metrics."""
    line = doc_block("sh", "OTEL_EXPORTER_OTLP_ENDPOINT").strip()
    env = dict(word.split("=", 1) for word in shlex.split(line) if "=" in word)
    assert set(env) == {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = env["OTEL_EXPORTER_OTLP_ENDPOINT"].replace("http://localhost:4318",
                                                                                  collector.url)
    root = write_project(tmp_path, {"steppe.toml": "telemetry = false\n", "steps/ping_step.py": PING,
                                    "steps/pong_step.py": PONG})
    host = start_host(root, env={**env, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    r = httpx.get(f"{host.url}/ping")
    assert r.text == "pong"
    ping, pong = sorted(collector.wait_for(r.headers["x-trace-id"], 2, "the ping and pong spans"),
                        key=lambda s: s["name"])
    assert (ping["name"], pong["name"]) == ("api Ping", "event Pong") and pong["parent"] == ping["id"]
    assert ping["service"] == env["OTEL_SERVICE_NAME"]
    wait_until(lambda: "Pong" in httpx.get(f"{host.url}/__steppe/metrics").text, 5, "Pong's delivery counted")
    metrics = scrape(host)
    assert metrics[("steppe_requests_total", (("method", "GET"), ("status", "200"), ("step", "Ping")))] == 1
    assert metrics[("steppe_deliveries_total", (("outcome", "ok"), ("step", "Pong")))] == 1
    assert httpx.get(f"{host.url}/__steppe/api/traces").status_code == 404  # the Workbench's store is off


def test_metrics_off_and_a_collector_that_is_down(tmp_path: Path, start_host: Any) -> None:
    """`metrics = false` removes the route; spans a collector does not take put `tracing` in health."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    toml = f'metrics = false\notel_endpoint = "http://127.0.0.1:{closed}"\n'
    root = write_project(tmp_path, {"steppe.toml": toml, "steps/ping_step.py": """
        config = {"type": "api", "name": "Ping", "path": "/ping", "method": "GET", "emits": []}

        async def handler(req, context):
            return {"status": 200, "body": "pong"}
    """})
    host = start_host(root, env={"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    assert httpx.get(f"{host.url}/ping").text == "pong"
    assert httpx.get(f"{host.url}/__steppe/metrics").status_code == 404

    def tracing_problem() -> dict[str, Any] | None:
        reasons = httpx.get(f"{host.url}/__steppe/health").json()["reasons"]
        return next((r for r in reasons if r["component"] == "tracing"), None)

    problem = wait_until(tracing_problem, 20, "health to name the collector that is down")
    assert problem["status"] == "degraded" and "collector" in problem["reason"]
    assert httpx.get(f"{host.url}/ping").text == "pong"  # the host serves on


def test_where_spans_go() -> None:
    """`otel_endpoint` first (a base URL: /v1/traces added), then the standard variables, else no tracing."""
    from types import SimpleNamespace

    from steppe.telemetry.tracing import configured_endpoint

    def where(endpoint: str, **env: str) -> str | None:
        return configured_endpoint(SimpleNamespace(otel_endpoint=endpoint), env)

    assert where("") is None
    assert where("http://c:4318") == where("http://c:4318/") == where("http://c:4318/v1/traces") == \
        "http://c:4318/v1/traces"
    assert where("http://c:4318", OTEL_EXPORTER_OTLP_ENDPOINT="http://other:4318") == "http://c:4318/v1/traces"
    assert where("", OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4318") == ""  # the exporter reads the variables
    assert where("", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://c:4318/v1/traces") == ""
    assert where("", OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4318", OTEL_SDK_DISABLED="true") is None
