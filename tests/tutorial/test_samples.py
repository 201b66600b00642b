"""Every sample of the Motia tutorial (tests/tutorial/samples/, byte-identical to the tutorial's text) runs
unmodified in one project (tests/tutorial/project/): triggers declared in its steppe.toml, the helpers the
tutorial never shows preloaded as globals. integration.test.js and processor.test.js need a test tester
that is another issue's, so they are not run here."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import RunningHost, need, wait_until

HERE = Path(__file__).parent
SAMPLES = HERE / "samples"
NOT_STEPS = {"README.md", "integration.test.js", "processor.test.js"}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    need("node")
    root = tmp_path_factory.mktemp("tutorial")
    shutil.copytree(HERE / "project", root, dirs_exist_ok=True)
    for sample in SAMPLES.iterdir():
        if sample.name not in NOT_STEPS:
            shutil.copyfile(sample, root / "steps" / sample.name)
    running = RunningHost(root, [], None).wait_ready(60)
    yield running
    running.stop()


def probe(host: RunningHost, **body: Any) -> dict[str, Any]:
    return httpx.post(f"{host.url}/probe", json=body, timeout=10).json()


def calls(host: RunningHost, name: str) -> list[list[Any]]:
    return [c["args"] for c in probe(host)["calls"] if c["name"] == name]


def observed(host: RunningHost, topic: str, count: int = 1, timeout: float = 15) -> list[Any]:
    return wait_until(lambda: (got := probe(host, topic=topic)["observed"]) and len(got) >= count and got,
                      timeout, f"{count} {topic!r} event(s)")


def emit(host: RunningHost, topic: str, data: Any) -> dict[str, Any]:
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": topic, "data": data}, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()


def test_every_sample_loads(host: RunningHost) -> None:
    steps = httpx.get(f"{host.url}/__steppe/steps", timeout=10).json()["steps"]
    broken = {s["path"]: s["error"] for s in steps if s["status"] != "ok"}
    assert not broken
    names = {s["name"] for s in steps}
    samples = {p.name.removesuffix(".step.js") for p in SAMPLES.iterdir() if p.name not in NOT_STEPS}
    assert samples <= names, samples - names
    kinds = {s["name"]: s["trigger"] for s in steps}
    assert kinds["spam-filter"] == "on *" and kinds["webhook-handler"] == "POST /webhook/github"


def test_handler_answers_its_plain_object(host: RunningHost) -> None:
    r = httpx.get(f"{host.url}/hello", timeout=10)
    assert r.status_code == 200 and r.json()["message"] == "Hello from Motia!"
    assert r.json()["timestamp"].endswith("Z")


def test_github_flow_webhook_review_notification(host: RunningHost) -> None:
    hook = {"action": "opened", "pull_request": {"number": 7, "title": "Add login", "user": {"login": "ada"},
                                                  "base": {"repo": {"full_name": "acme/shop"}}}}
    r = httpx.post(f"{host.url}/webhook/github", json=hook, timeout=10)
    assert (r.status_code, r.json()) == (200, {"status": "processed"})  # a string status is a body
    assert observed(host, "pr-opened")[0] == {"prNumber": 7, "repository": "acme/shop", "author": "ada",
                                              "title": "Add login"}
    assert observed(host, "review-completed")[0] == {"prNumber": 7, "repository": "acme/shop", "reviewScore": 8}
    assert ["acme/shop", 7, 8] in calls(host, "postReviewComments")
    wait_until(lambda: len(calls(host, "sendSlackNotification")) >= 2, 10, "two Slack notifications")
    messages = [a[0]["message"] for a in calls(host, "sendSlackNotification") if a[0]["channel"] == "#dev-team"]
    assert sorted(messages) == ["AI 리뷰가 완료되었습니다: acme/shop #7", "PR이 열렸습니다: acme/shop #7"]
    # a closed PR is acknowledged and starts nothing
    r = httpx.post(f"{host.url}/webhook/github", json={**hook, "action": "closed"}, timeout=10)
    assert r.json() == {"status": "processed"}


def test_gmail_flow_spam_priority_urgent(host: RunningHost) -> None:
    probe(host, set={"vip-senders": ["boss@acme.test"]})
    r = httpx.post(f"{host.url}/webhook/email", json={"messageId": "m1", "from": "x@spam.test",
                                                       "subject": "WIN a prize", "body": "click"}, timeout=10)
    assert (r.status_code, r.json()) == (200, {"status": "queued"})
    stored = probe(host, key="email:m1")["value"]
    assert stored["from"] == "x@spam.test" and stored["processed"] is False
    assert observed(host, "spam-detected")[0] == {"messageId": "m1", "from": "x@spam.test", "spamScore": 0.95}
    wait_until(lambda: ["m1"] in calls(host, "moveToSpam"), 10, "the spam to be moved")

    httpx.post(f"{host.url}/webhook/email", json={"messageId": "m2", "from": "boss@acme.test",
                                                   "subject": "Lunch", "body": "at noon"}, timeout=10)
    httpx.post(f"{host.url}/webhook/email", json={"messageId": "m3", "from": "ops@acme.test",
                                                   "subject": "Server down", "body": "URGENT fix"}, timeout=10)
    urgent = {e["messageId"]: e["reason"] for e in observed(host, "high-priority", 2)}
    assert urgent == {"m2": "vip-sender", "m3": "urgent-keywords"}
    wait_until(lambda: len(calls(host, "sendPushNotification")) >= 2, 10, "push notifications")
    slack = [a[0] for a in calls(host, "sendSlackNotification") if a[0]["channel"] == "#urgent-emails"]
    assert len(slack) == 2 and any("Server down" in s["message"] for s in slack)
    assert all(a[0]["priority"] == "high" for a in calls(host, "sendPushNotification"))


def test_welcome_email_reacts_to_its_topic_only(host: RunningHost) -> None:
    emit(host, "user-registered", {"userId": "u-9"})
    wait_until(lambda: ["u-9"] in calls(host, "sendWelcomeEmail"), 10, "the welcome email")
    emit(host, "user-updated", {"userId": "u-10"})
    emit(host, "user-registered", {"userId": "u-11"})
    wait_until(lambda: ["u-11"] in calls(host, "sendWelcomeEmail"), 10, "the second welcome email")
    assert ["u-10"] not in calls(host, "sendWelcomeEmail")


def test_processor_processes_and_announces(host: RunningHost) -> None:
    emit(host, "data-received", {"id": "d1"})
    done = observed(host, "processing-complete")[0]
    assert done["result"] == "success" and "processedAt" in done
    assert [{"id": "d1"}] in calls(host, "processData")


def test_cached_processor_runs_the_expensive_operation_once_per_id(host: RunningHost) -> None:
    emit(host, "cache-request", {"id": "c1", "value": 21})
    emit(host, "cache-request", {"id": "c1", "value": 21})
    wait_until(lambda: probe(host, key="processed:c1")["value"], 10, "the cached result")
    assert probe(host, key="processed:c1")["value"] == {"id": "c1", "doubled": 42}
    emit(host, "cache-request", {"id": "c2", "value": 1})
    wait_until(lambda: ["c2"] in calls(host, "expensiveOperation"), 10, "the second id")
    assert calls(host, "expensiveOperation").count(["c1"]) == 1


def test_monitored_processor_returns_the_result_and_logs(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/monitored", json={"id": "p1", "type": "report"}, timeout=10)
    assert (r.status_code, r.json()) == (200, {"processed": "p1"})
    logs = httpx.get(f"{host.url}/__steppe/logs", params={"traceId": r.headers["x-trace-id"]}, timeout=10).json()
    lines = [line["msg"] for line in logs]  # console.log output, captured per invocation
    assert any(m.startswith("Processing started { id: 'p1'") for m in lines)
    assert any(m.startswith("Processing completed { id: 'p1'") for m in lines)
    failed = httpx.post(f"{host.url}/monitored", json={"id": "p2", "fail": True}, timeout=10)
    assert failed.status_code == 500
    logs = httpx.get(f"{host.url}/__steppe/logs", params={"traceId": failed.headers["x-trace-id"]},
                     timeout=10).json()
    assert any(line["msg"].startswith("Processing failed") and line["level"] == "error" for line in logs)


def test_resilient_processor_backs_off_then_reports_failure(host: RunningHost) -> None:
    emit(host, "flaky-job", {"id": "f1", "fail": True})
    failed = observed(host, "processing-failed")[0]
    assert failed == {"data": {"id": "f1", "fail": True}, "error": "cannot process f1", "attempts": 3}
    assert calls(host, "sleep")[:2] == [[2000], [4000]]
    dead = wait_until(lambda: [d for d in httpx.get(f"{host.url}/__steppe/dlq", timeout=10).json()
                               if d["step"] == "resilient-processor"], 10, "the dead letter")
    assert "cannot process f1" in dead[0]["error"]


def test_parallel_processor_returns_results_and_streams_batches(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/parallel", json={"items": list(range(12))}, timeout=10)
    assert r.json() == {"results": [i * 10 for i in range(12)]}
    items = probe(host, stream="batch-complete", trace=r.headers["x-trace-id"])["stream"]
    assert [(i["completed"], i["total"]) for i in items] == [(5, 12), (10, 12), (12, 12)]


def test_long_running_task_streams_its_progress(host: RunningHost) -> None:
    trace = emit(host, "long-task", {})["traceId"]
    items = wait_until(lambda: (got := probe(host, stream="progress", trace=trace)["stream"]) and len(got) == 102
                       and got, 15, "102 progress items")
    assert items[0]["status"] == "started" and items[-1]["status"] == "completed"
    assert [i["progress"] for i in items[1:-1]] == list(range(1, 101))


def test_memory_efficient_processor_reads_in_chunks(host: RunningHost, tmp_path: Path) -> None:
    data = tmp_path / "big.txt"
    data.write_bytes(b"x" * 16 * 2500)  # 2,500 chunks of 16 bytes (the preloaded createReadStream)
    r = httpx.post(f"{host.url}/files/process", json={"filePath": str(data)}, timeout=30)
    assert r.json() == {"totalProcessed": 2500}
    progress = probe(host, stream="progress", trace=r.headers["x-trace-id"])["stream"]
    assert [p["processed"] for p in progress] == [1000, 2000]


def test_batch_processor_processes_a_batch_of_100(host: RunningHost) -> None:
    with httpx.Client(timeout=10) as http:
        for i in range(150):
            assert http.post(f"{host.url}/__steppe/emit", json={"topic": "item-added", "data": {"n": i}}).is_success
    assert observed(host, "batch-processed", timeout=30)[0]["itemCount"] == 100
    wait_until(lambda: len(probe(host, key="pending-items")["value"] or []) == 50, 15, "50 pending items")
    assert calls(host, "processBatch") == [[100]]


def test_state_machine_walks_an_order_to_delivered(host: RunningHost) -> None:
    for _ in range(3):
        emit(host, "order-event", {"orderId": "o1"})
    assert observed(host, "order-delivered")[0] == {"orderId": "o1"}
    assert probe(host, key="order:o1:state")["value"] == "delivered"
    for helper in ("processPayment", "prepareShipment", "confirmDelivery"):
        assert calls(host, helper) == [["o1"]]


def test_the_atomic_patterns_lose_nothing_under_concurrency(host: RunningHost) -> None:
    with httpx.Client(timeout=10) as http:
        for i in range(150):
            http.post(f"{host.url}/__steppe/emit", json={"topic": "atomic-item-added", "data": {"n": i}})
        for _ in range(3):
            http.post(f"{host.url}/__steppe/emit", json={"topic": "atomic-order-event", "data": {"orderId": "o2"}})
    assert observed(host, "atomic-batch-processed", timeout=30)[0]["itemCount"] >= 100
    pending = wait_until(lambda: (v := probe(host, key="atomic-pending")["value"]) is not None and
                         len(v) + observed(host, "atomic-batch-processed")[0]["itemCount"] == 150 and v,
                         15, "every item accounted for")
    assert len(pending) < 100
    moves = observed(host, "atomic-order-moved", 3)
    assert [(m["from"], m["to"]) for m in moves] == [("pending", "paid"), ("paid", "shipped"),
                                                      ("shipped", "delivered")]


def test_cron_samples_run_on_their_declared_schedule(host: RunningHost) -> None:
    cleanup = observed(host, "cleanup-completed", timeout=10)[0]
    assert cleanup["stats"]["received"] == 3 and cleanup["date"] == cleanup["stats"]["date"]
    assert [7] in calls(host, "permanentlyDeleteSpam")
    metrics = observed(host, "metrics-collected", timeout=10)[0]
    assert metrics["activeConnections"] == 3 and metrics["memoryUsage"]["heapUsed"] > 0
    probe(host, set={"daily-stats": {"prsOpened": 5, "reviewsCompleted": 4, "prsMerged": 3}})

    def reports() -> list[Any] | None:
        got = probe(host, topic="report-generated")["observed"] or []
        kinds = {"daily" if r.get("kind") == "daily" else "stats" for r in got}
        with_stats = [r for r in got if r.get("stats", {}).get("prsOpened") == 5]
        return got if kinds == {"daily", "stats"} and with_stats else None

    wait_until(reports, 10, "both daily reports, one carrying the stats")
    wait_until(lambda: probe(host, key="daily-stats")["value"]["prsOpened"] == 0, 10, "the stats reset")
