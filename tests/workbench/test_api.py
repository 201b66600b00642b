"""The Workbench's JSON API against one real host (real runners, real HTTP, real SQLite telemetry)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from project import make_project

from conftest import RunningHost, wait_until

ENV = {"STEPPE_RETRY_BASE": "0.01", "STEPPE_RETRY_CAP": "0.05"}

JSON = {"content-type": "application/json"}  # the admin guard takes JSON bodies only (415 otherwise)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    root = make_project(tmp_path_factory.mktemp("wb") / "shop")
    running = RunningHost(root, [], ENV).wait_ready()
    yield running
    running.stop()


def get(host: RunningHost, path: str, **params: object) -> object:
    r = httpx.get(f"{host.url}{path}", params=params, timeout=10)  # type: ignore[arg-type]
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def trace_of(host: RunningHost, trace_id: str, count: int) -> dict:
    def done() -> dict | None:
        r = httpx.get(f"{host.url}/__steppe/api/traces/{trace_id}")
        body = r.json() if r.status_code == 200 else None
        ok = body and len(body["invocations"]) >= count and all(i["status"] != "running" for i in body["invocations"])
        return body if ok else None

    return wait_until(done, 15, f"trace {trace_id} with {count} invocations")


def test_a_request_is_traced_across_runners_with_its_operations(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/orders", json={"item": "tea", "qty": 2},
                   headers={"authorization": "Bearer s3cret", "cookie": "sid=s3cret"})
    assert r.status_code == 201
    trace_id = r.headers["x-trace-id"]
    trace = trace_of(host, trace_id, 2)
    api, event = trace["invocations"]
    assert (api["step"], api["trigger"], api["language"], api["status"]) == ("PlaceOrder", "api", "node", "ok")
    assert api["input"]["body"] == {"item": "tea", "qty": 2}
    headers = api["input"]["headers"]  # credentials are never written to the telemetry store
    assert headers["authorization"] == headers["cookie"] == "[redacted]" and "s3cret" not in str(trace)
    assert [(o["op"], o["target"], o["data"]) for o in api["ops"]] == [
        ("emit", "order.placed", {"item": "tea", "qty": 2})]
    assert (event["step"], event["trigger"], event["language"], event["topic"], event["attempt"]) == (
        "StoreOrder", "event", "python", "order.placed", 1)
    assert event["opCounts"] == {"state.set": 1, "streams.set": 1}
    assert [o["target"] for o in event["ops"]] == ["orders/tea", "orders/all/tea"]
    assert all(o["ms"] >= 0 and o["at"] >= 0 for o in event["ops"])
    assert event["start"] >= api["start"] and api["duration"] > 0
    assert trace["languages"] == ["node", "python"]
    listed = wait_until(lambda: [t for t in get(host, "/__steppe/api/traces", step="StoreOrder")  # type: ignore[union-attr]
                                 if t["traceId"] == trace_id], 5, "the trace in the list")
    assert listed[0]["entry"] == "PlaceOrder" and listed[0]["invocations"] == 2 and listed[0]["status"] == "ok"
    assert listed[0]["flows"] == ["shop"]
    assert not [t for t in get(host, "/__steppe/api/traces", flow="ops") if t["traceId"] == trace_id]  # type: ignore[union-attr]
    logs = wait_until(lambda: get(host, "/__steppe/api/logs", traceId=trace_id), 5, "the trace's logs")
    assert {"order received", "order stored"} <= {line["msg"] for line in logs}  # type: ignore[union-attr]


def test_a_failing_handler_is_recorded_with_its_error_and_stack(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "payment.requested", "data": {"amount": 5}})
    trace_id = r.json()["traceId"]
    trace = trace_of(host, trace_id, 2)  # maxRetries 2: two attempts
    assert [(i["attempt"], i["status"]) for i in trace["invocations"]] == [(1, "error"), (2, "error")]
    assert "card declined" in trace["invocations"][0]["error"]
    assert "charge_step.py" in trace["invocations"][0]["stack"]
    assert get(host, "/__steppe/api/traces", status="error", step="Charge")[0]["traceId"] == trace_id  # type: ignore[index]
    dead = wait_until(lambda: [d for d in get(host, "/__steppe/dlq") if d["event"]["traceId"] == trace_id],  # type: ignore[union-attr]
                      5, "the dead letter")
    assert [(d["id"], d["step"]) for d in trace_of(host, trace_id, 2)["deadLetters"]] == [(dead[0]["id"], "Charge")]
    # fix the step (dev mode reloads it), replay the dead letter: it succeeds, in the same trace
    (host.root / "steps" / "charge.ok").write_text("")
    replay = httpx.post(f"{host.url}/__steppe/dlq/replay", json={"ids": [dead[0]["id"]]})
    assert replay.json()["replayed"] == 1
    trace = trace_of(host, trace_id, 3)
    assert trace["invocations"][-1]["status"] == "ok" and trace["deadLetters"] == []


def test_the_live_feed_sends_log_lines_and_state_changes(host: RunningHost) -> None:
    seen: list[tuple[str, dict]] = []
    with httpx.stream("GET", f"{host.url}/__steppe/api/live", timeout=10) as live:
        assert live.headers["content-type"].startswith("text/event-stream")
        httpx.post(f"{host.url}/orders", json={"item": "live-tea", "qty": 1})
        kind = ""
        deadline = time.monotonic() + 10
        lines = live.iter_lines()
        for line in lines:
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                seen.append((kind, orjson.loads(line[6:])))
            if ("state", "orders", "live-tea") in [(k, d.get("group"), d.get("key")) for k, d in seen] and \
                    any(k == "log" and d["msg"] == "order stored" for k, d in seen):
                break
            assert time.monotonic() < deadline, seen
        # a tick comes at least every second (in flight, finished, health); one sent before the order's two
        # invocations finished counts fewer, so read the first tick that follows them
        ticks_before = sum(k == "tick" for k, _ in seen)
        while sum(k == "tick" for k, _ in seen) == ticks_before:
            line = next(lines)
            kind = line[7:] if line.startswith("event: ") else kind
            if line.startswith("data: "):
                seen.append((kind, orjson.loads(line[6:])))
    tick = [d for k, d in seen if k == "tick"][-1]
    assert tick["finished"] >= 2 and tick["inFlight"] >= 0 and tick["health"] in ("ok", "degraded", "failing")


def test_state_can_be_read_edited_and_cleared(host: RunningHost) -> None:
    base = f"{host.url}/__steppe/api/state"
    r = httpx.put(f"{base}/prefs/theme", json={"value": {"dark": True}, "ttl": 60})
    assert r.status_code == 200
    assert "prefs" in get(host, "/__steppe/api/state")["groups"]  # type: ignore[index]
    keys = get(host, "/__steppe/api/state/prefs")["keys"]  # type: ignore[index]
    assert keys[0]["key"] == "theme" and keys[0]["value"] == {"dark": True} and 55 < keys[0]["ttlLeft"] <= 60
    # a handler reads what the Workbench wrote
    assert httpx.get(f"{host.url}/state/prefs/theme").json() == {"value": {"dark": True}}
    assert httpx.put(f"{base}/prefs/theme", content=b"{nope", headers=JSON).status_code == 400
    assert httpx.put(f"{base}/prefs/theme", json={"val": 1}).status_code == 400
    assert httpx.delete(f"{base}/prefs/theme").json()["deleted"] is True
    assert httpx.get(f"{host.url}/state/prefs/theme").json() == {"value": None}
    httpx.put(f"{base}/tmp/a", json={"value": 1})
    assert httpx.delete(f"{base}/tmp").json()["cleared"] is True
    assert get(host, "/__steppe/api/state/tmp")["keys"] == []  # type: ignore[index]


def test_state_names_holding_a_slash_can_be_opened_and_edited(host: RunningHost) -> None:
    """Seen: the Workbench (which sends names with encodeURIComponent) could not open a state group named
    `users/7`: `/__steppe/api/state/users%2F7` was routed as group `users`, key `7`, and answered 405; a key
    holding a `/` could be neither edited nor deleted."""
    base = f"{host.url}/__steppe/api/state"
    assert httpx.put(f"{base}/users%2F7/a%2Fb", json={"value": 1}).json() == {"group": "users/7", "key": "a/b",
                                                                           "value": 1}
    assert [k["key"] for k in get(host, "/__steppe/api/state/users%2F7")["keys"]] == ["a/b"]  # type: ignore[index]
    assert httpx.get(f"{base}/users%2F7/a%2Fb").status_code == 405  # a key is read through its group
    assert httpx.delete(f"{base}/users%2F7/a%2Fb").json()["deleted"] is True
    assert httpx.delete(f"{base}/users%2F7").json() == {"group": "users/7", "cleared": True}


def test_the_flow_graph_has_every_step_stream_and_edge(host: RunningHost) -> None:
    g = get(host, "/__steppe/api/flows")
    nodes = {n["name"]: n for n in g["nodes"]}  # type: ignore[index]
    (broken,) = [n for n in g["nodes"] if n["status"] == "error"]  # type: ignore[index]
    assert broken["path"] == "steps/broken.step.js" and "broken on purpose" in broken["error"]
    assert nodes["PlaceOrder"]["method"] == "POST" and nodes["PlaceOrder"]["route"] == "/orders"
    assert nodes["Nightly"]["cron"] == "0 3 * * *"
    assert nodes["orders"]["kind"] == "stream"
    edges = {(e["source"], e["target"], e["virtual"]) for e in g["edges"]}  # type: ignore[index]
    assert ("step:PlaceOrder", "step:StoreOrder", False) in edges
    assert ("step:PlaceOrder", "step:Audit", True) in edges
    assert ("step:StoreOrder", "stream:orders", False) in edges
    # a step that does not declare the stream it writes gets its edge once it was seen writing it
    (host.root / "steps" / "restock_step.py").write_text(
        'config = {"type": "api", "name": "Restock", "path": "/restock", "method": "POST", "emits": []}\n'
        "async def handler(req, context):\n"
        "    await context.streams.orders.set('all', 'restock', {'ok': True})\n"
        "    return {'status': 200, 'body': {}}\n")
    wait_until(lambda: httpx.post(f"{host.url}/restock").status_code == 200, 15, "the new step to answer")
    g = get(host, "/__steppe/api/flows")
    assert [e["seen"] for e in g["edges"] if e["source"] == "step:Restock"] == [True]  # type: ignore[index]
    assert g["flows"] == ["ops", "shop"]  # type: ignore[index]


def test_cron_lists_next_runs_and_runs_now(host: RunningHost) -> None:
    (row,) = get(host, "/__steppe/api/cron")  # type: ignore[misc]
    assert row["name"] == "Nightly" and len(row["next"]) == 5 and row["next"][0] > time.time()
    assert time.localtime(row["next"][0]).tm_hour == 3
    r = httpx.post(f"{host.url}/__steppe/api/cron/Nightly/run")
    assert r.status_code == 202
    trace = trace_of(host, r.json()["traceId"], 1)
    assert trace["invocations"][0]["trigger"] == "cron" and trace["invocations"][0]["status"] == "ok"
    assert httpx.get(f"{host.url}/state/nightly/ran").json() == {"value": True}
    assert wait_until(lambda: get(host, "/__steppe/api/cron")[0]["last"], 5, "the last run")[-1]["status"] == "ok"  # type: ignore[index]
    assert httpx.post(f"{host.url}/__steppe/api/cron/Nope/run").status_code == 404


def test_unrouted_events_replay_once_a_subscriber_exists(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "refund.requested", "data": {"n": 1}})
    event_id = r.json()["id"]
    rows = get(host, "/__steppe/api/unrouted")
    assert [e["subscribers"] for e in rows if e["id"] == event_id] == [0]  # type: ignore[union-attr]
    waiting = httpx.post(f"{host.url}/__steppe/api/unrouted/replay", json={"ids": [event_id]}).json()
    assert waiting == {"replayed": [], "noSubscriber": [event_id]}
    (host.root / "steps" / "refund_step.py").write_text(
        'config = {"type": "event", "name": "Refund", "subscribes": ["refund.requested"], "emits": []}\n'
        "async def handler(input, context):\n    context.logger.info('refunded', input)\n")
    wait_until(lambda: [e for e in get(host, "/__steppe/api/unrouted") if e["id"] == event_id  # type: ignore[union-attr]
                        and e["subscribers"] == 1], 15, "the new subscriber to load")
    done = httpx.post(f"{host.url}/__steppe/api/unrouted/replay", json={"ids": [event_id]}).json()
    assert done == {"replayed": [event_id], "noSubscriber": []}
    trace = trace_of(host, r.json()["traceId"], 1)
    assert trace["invocations"][0]["step"] == "Refund" and trace["invocations"][0]["status"] == "ok"
    assert not [e for e in get(host, "/__steppe/api/unrouted") if e["id"] == event_id]  # type: ignore[union-attr]
    assert httpx.post(f"{host.url}/__steppe/api/unrouted/replay", content=b"[1]", headers=JSON).status_code == 400


def test_runners_overview_and_ui_entry(host: RunningHost) -> None:
    assert httpx.get(f"{host.url}/fail").status_code == 500
    runners = {r["language"]: r for r in get(host, "/__steppe/api/runners")}  # type: ignore[union-attr]
    assert set(runners) == {"node", "python"}
    for r in runners.values():
        assert r["pid"] > 0 and r["rss"] > 1_000_000 and r["uptime"] >= 0 and r["version"]
    assert runners["python"]["lastError"]["message"] == "Fail: ValueError: out of stock"
    overview = get(host, "/__steppe/api/overview")
    assert overview["project"] == "shop" and overview["mode"] == "dev" and overview["telemetry"] is True  # type: ignore[index]
    home = httpx.get(f"{host.url}/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/__steppe/ui/"
    page = httpx.get(f"{host.url}/__steppe/ui/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    assert httpx.get(f"{host.url}/__steppe/ui", follow_redirects=True).text == page.text
    nope = httpx.get(f"{host.url}/__steppe/api/nope")
    assert nope.status_code == 404 and nope.json()["error"] == "Not Found"
    (asset,) = [a for a in page.text.split('"') if a.startswith("/__steppe/ui/assets/") and a.endswith(".js")]
    script = httpx.get(f"{host.url}{asset}")
    assert script.status_code == 200 and "immutable" in script.headers["cache-control"]
    assert "javascript" in script.headers["content-type"]
    for bad in ("..%2Fbuild.json", "..%2F..%2Fclient.js", "nope.js"):
        assert httpx.get(f"{host.url}/__steppe/ui/assets/{bad}").status_code == 404
    assert get(host, "/__steppe/api/streams")[0]["name"] == "orders"  # type: ignore[index]
    httpx.post(f"{host.url}/orders", json={"item": "stream-me", "qty": 1})
    wait_until(lambda: get(host, "/__steppe/api/streams/orders/all"), 10, "the stored items")
    assert [g["groupId"] for g in get(host, "/__steppe/api/streams/orders")] == ["all"]  # type: ignore[union-attr]
    assert httpx.get(f"{host.url}/__steppe/api/streams/nope").status_code == 404


@pytest.mark.parametrize("trace_id", ["%E2%98%83", "caf%C3%A9", "nope", "a%0Ab"])
def test_an_unknown_trace_is_a_404_whatever_its_id(host: RunningHost, trace_id: str) -> None:
    """Seen: GET /__steppe/api/traces/☃ answered 500: the 404 put the id in its x-trace-id header."""
    r = httpx.get(f"{host.url}/__steppe/api/traces/{trace_id}")
    assert r.status_code == 404 and r.json()["error"] == "Not Found", r.text


@pytest.mark.parametrize("body", [b"null", b"[]", b'"all"', b"{}", b'{"ids": [1]}'])
def test_unrouted_replay_and_drop_refuse_a_body_of_the_wrong_shape_saying_what_they_take(
        host: RunningHost, body: bytes) -> None:
    """Seen: a JSON null body answered 400 {"error": "'NoneType' object has no attribute 'get'"}."""
    for action in ("replay", "drop"):
        r = httpx.post(f"{host.url}/__steppe/api/unrouted/{action}", content=body, headers=JSON)
        assert r.status_code == 400 and r.json()["error"] == 'expected {"ids": ["event id", ...]} or {"all": true}', \
            (action, body, r.text)


def test_logs_and_traces_survive_a_restart(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/orders", json={"item": "persisted", "qty": 3})
    trace_id = r.headers["x-trace-id"]
    trace_of(host, trace_id, 2)
    # a page tailing the live feed must not hold the stop up (the server waits for open responses)
    with httpx.stream("GET", f"{host.url}/__steppe/api/live", timeout=10) as live:
        lines = live.iter_lines()
        while next(lines) != "event: tick":
            pass
        started = time.monotonic()
        assert host.stop() == 0
        assert time.monotonic() - started < 5
    again = RunningHost(host.root, [], ENV).wait_ready()
    try:
        assert len(trace_of(again, trace_id, 2)["invocations"]) == 2
        assert any(line["msg"] == "order stored" for line in get(again, "/__steppe/api/logs", traceId=trace_id))  # type: ignore[union-attr]
        assert get(again, "/__steppe/api/logs", q="ORDER STORED", level="info", limit=1)[0]["msg"] == "order stored"  # type: ignore[index]
    finally:
        again.stop()

