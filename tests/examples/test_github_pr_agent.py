"""examples/github-pr-agent end to end, offline: its own fake GitHub/Slack/OpenAI (fakes/fake_services.py)
as a real HTTP server, the app under a real host, signed webhooks over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import REPO, RunningHost, free_port, need, wait_until

EXAMPLE = REPO / "examples" / "github-pr-agent"
SECRET = "test-secret"


class Services:
    def __init__(self, root: Path) -> None:
        self.port, self.app_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(root / "fakes" / "fake_services.py"), "--port", str(self.port), "--webhook-url",
             f"http://127.0.0.1:{self.app_port}/webhook/github", "--webhook-secret", SECRET],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdout is not None and b"fake GitHub" in self.proc.stdout.readline()

    def requests(self, method: str | None = None, pattern: str = "") -> list[dict[str, Any]]:
        got = httpx.get(f"{self.url}/__requests", timeout=10).json()
        return [r for r in got if (method is None or r["method"] == method) and re.search(pattern, r["path"])]

    def slack(self, channel: str) -> list[str]:
        return [r["body"]["text"] for r in self.requests("POST", "chat.postMessage") if r["body"]["channel"] == channel]

    def env(self) -> dict[str, str]:
        return {"GITHUB_API_URL": f"{self.url}/github", "GITHUB_TOKEN": "ghp_test", "GITHUB_WEBHOOK_SECRET": SECRET,
                "OPENAI_BASE_URL": f"{self.url}/openai/v1", "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "gpt-test",
                "SLACK_API_URL": f"{self.url}/slack/api", "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_REPORT_CHANNEL": "#dev-reports", "MERGE_MIN_SCORE": "8"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningHost, Services]]:
    need("node")
    root = tmp_path_factory.mktemp("pr-agent") / "github-pr-agent"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".steppe", ".env"))
    # the report is daily; here it runs every second (declared outside the code, as a user would)
    with (root / "steppe.toml").open("a") as toml:
        toml.write('\n[steps."daily-report.step.js"]\ncron = "* * * * * *"\n')
    services = Services(root)
    host = RunningHost(root, [], services.env(), port=services.app_port).wait_ready(60)
    yield host, services
    host.stop()
    services.proc.terminate()
    services.proc.wait(10)


def webhook(host: RunningHost, payload: dict[str, Any], secret: str = SECRET,
            event: str = "pull_request") -> httpx.Response:
    raw = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return httpx.post(f"{host.url}/webhook/github", content=raw, timeout=10, headers={
        "content-type": "application/json", "x-github-event": event, "x-hub-signature-256": signature})


def opened(number: int) -> dict[str, Any]:
    return {"action": "opened", "number": number, "pull_request": {
        "number": number, "title": f"Change {number}", "user": {"login": "ada"},
        "base": {"repo": {"full_name": "acme/shop"}}}}


def test_every_step_loads_across_two_languages(app: tuple[RunningHost, Services]) -> None:
    host, _ = app
    steps = httpx.get(f"{host.url}/__steppe/steps", timeout=10).json()["steps"]
    assert {s["name"]: s["status"] for s in steps} == {n: "ok" for n in (
        "webhook-handler", "code-review", "notification", "merge-handler", "daily-report", "slack-notification")}
    assert {s["language"] for s in steps} == {"node", "python"}


def test_a_bad_signature_is_refused(app: tuple[RunningHost, Services]) -> None:
    host, services = app
    r = webhook(host, opened(99), secret="wrong")
    assert r.status_code == 401 and r.json() == {"error": "invalid X-Hub-Signature-256"}
    assert webhook(host, {"zen": "hi"}, event="ping").json() == {"status": "pong"}
    assert not services.requests(pattern="/pulls/99")


def test_a_good_pr_is_reviewed_commented_merged_and_announced(app: tuple[RunningHost, Services]) -> None:
    host, services = app
    r = webhook(host, opened(42))
    assert (r.status_code, r.json()) == (200, {"status": "processed"})

    comment = wait_until(lambda: services.requests("POST", r"/issues/42/comments"), 20, "the review comment")
    assert comment[0]["body"]["body"].startswith("**AI review: 9/10**")
    assert comment[0]["headers"]["authorization"] == "Bearer ghp_test"
    diff = services.requests("GET", r"/github/repos/acme/shop/pulls/42$")
    assert diff and "diff" in diff[0]["headers"]["accept"]
    chat = services.requests("POST", "/openai/v1/chat/completions")
    assert chat[0]["body"]["model"] == "gpt-test" and "const b" in chat[0]["body"]["messages"][-1]["content"]

    merge = wait_until(lambda: services.requests("PUT", r"/pulls/42/merge"), 20, "the merge")
    assert merge[0]["body"]["merge_method"] == "squash"
    # GitHub's merged webhook comes back signed; the notification step announces all three stages
    wait_until(lambda: len([m for m in services.slack("#dev-team") if "#42" in m]) == 3, 20, "three messages")
    assert sorted(services.slack("#dev-team")) == sorted([f"{stage}: acme/shop #42" for stage in (
        "PR이 열렸습니다", "AI 리뷰가 완료되었습니다", "PR이 병합되었습니다")])


def test_a_weak_pr_is_reviewed_but_left_open(app: tuple[RunningHost, Services]) -> None:
    host, services = app
    webhook(host, opened(13))
    comment = wait_until(lambda: services.requests("POST", r"/issues/13/comments"), 20, "the review comment")
    assert comment[0]["body"]["body"].startswith("**AI review: 4/10**")
    wait_until(lambda: "AI 리뷰가 완료되었습니다: acme/shop #13" in services.slack("#dev-team"), 20,
               "the review message")
    assert not services.requests("PUT", r"/pulls/13/merge")


def test_the_daily_report_counts_every_pr_exactly_once(app: tuple[RunningHost, Services]) -> None:
    _, services = app

    def totals() -> tuple[int, int, int] | None:
        sums = [0, 0, 0]
        for text in services.slack("#dev-reports"):
            m = re.search(r"(\d+) opened, (\d+) reviewed, (\d+) merged", text)
            assert m, text
            sums = [a + int(b) for a, b in zip(sums, m.groups(), strict=True)]
        return tuple(sums) if tuple(sums) == (2, 2, 1) else None  # type: ignore[return-value]

    wait_until(totals, 15, "reports adding up to 2 opened, 2 reviewed, 1 merged", step=0.25)
