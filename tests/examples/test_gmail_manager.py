"""examples/gmail-manager end to end, offline: its own fake Gmail/OpenAI/ntfy/Slack (fakes/fake_services.py)
as a real HTTP server, the app under a real host, emails posted to its webhook over real HTTP."""

from __future__ import annotations

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

EXAMPLE = REPO / "examples" / "gmail-manager"


class Services:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, str(root / "fakes" / "fake_services.py"), "--port",
                                      str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdout is not None and b"fake Gmail" in self.proc.stdout.readline()

    def requests(self, method: str | None = None, pattern: str = "") -> list[dict[str, Any]]:
        got = httpx.get(f"{self.url}/__requests", timeout=10).json()
        return [r for r in got if (method is None or r["method"] == method) and re.search(pattern, r["path"])]

    def slack(self, channel: str) -> list[str]:
        return [r["body"]["text"] for r in self.requests("POST", "chat.postMessage") if r["body"]["channel"] == channel]

    def env(self) -> dict[str, str]:
        return {"GMAIL_API_URL": f"{self.url}/gmail", "GMAIL_ACCESS_TOKEN": "ya29.test",
                "OPENAI_BASE_URL": f"{self.url}/openai/v1", "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "gpt-test",
                "SLACK_API_URL": f"{self.url}/slack/api", "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_REPORT_CHANNEL": "#email-reports", "NTFY_URL": f"{self.url}/ntfy", "NTFY_TOPIC": "urgent-mail"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningHost, Services]]:
    need("node")
    root = tmp_path_factory.mktemp("gmail") / "gmail-manager"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".steppe", ".env"))
    # the cleanup is nightly; here it runs every second (declared outside the code, as a user would)
    with (root / "steppe.toml").open("a") as toml:
        toml.write('\n[steps."daily-cleanup.step.js"]\ncron = "* * * * * *"\n')
    services = Services(root)
    host = RunningHost(root, [], services.env()).wait_ready(60)
    yield host, services
    host.stop()
    services.proc.terminate()
    services.proc.wait(10)


def email(host: RunningHost, message_id: str, sender: str, subject: str, body: str) -> httpx.Response:
    return httpx.post(f"{host.url}/webhook/email", timeout=10,
                      json={"messageId": message_id, "from": sender, "subject": subject, "body": body})


def test_every_step_loads_across_two_languages(app: tuple[RunningHost, Services]) -> None:
    host, _ = app
    steps = httpx.get(f"{host.url}/__steppe/steps", timeout=10).json()["steps"]
    assert {s["name"]: s["status"] for s in steps} == {n: "ok" for n in (
        "email-processor", "vip-senders", "spam-filter", "priority-classifier", "urgent-notification",
        "daily-cleanup", "report-generator")}
    assert {s["language"] for s in steps} == {"node", "python"}


def test_spam_is_scored_and_moved_to_the_spam_label(app: tuple[RunningHost, Services]) -> None:
    host, services = app
    r = email(host, "m-spam", "lucky@promo.test", "You WIN a prize", "click here")
    assert (r.status_code, r.json()) == (200, {"status": "queued"})
    moved = wait_until(lambda: services.requests("POST", r"/messages/m-spam/modify"), 15, "the move to spam")
    assert moved[0]["body"] == {"addLabelIds": ["SPAM"], "removeLabelIds": ["INBOX"]}
    assert moved[0]["headers"]["authorization"] == "Bearer ya29.test"
    chat = services.requests("POST", "chat/completions")
    assert any("You WIN a prize" in c["body"]["messages"][-1]["content"] for c in chat)
    assert not services.requests("POST", "^/ntfy")


def test_urgent_and_vip_mail_notify_by_push_and_slack(app: tuple[RunningHost, Services]) -> None:
    host, services = app
    added = httpx.post(f"{host.url}/vip-senders", json={"email": "Boss@Acme.test"}, timeout=10)
    assert added.json() == {"vipSenders": ["boss@acme.test"]}
    assert httpx.post(f"{host.url}/vip-senders", json={"email": "nope"}, timeout=10).status_code == 400

    email(host, "m-urgent", "ops@acme.test", "Server down", "need a fix ASAP")
    email(host, "m-vip", "boss@acme.test", "Lunch", "at noon")
    email(host, "m-plain", "friend@mail.test", "Photos", "from the trip")
    def published() -> list[dict[str, Any]] | None:
        got = [r["body"] for r in services.requests("POST", "^/ntfy/$")]
        return got if len(got) >= 2 else None

    pushes = wait_until(published, 15, "two push notifications")
    assert {(p["topic"], p["title"], p["priority"]) for p in pushes} == {("urgent-mail", "긴급 이메일 수신", 4)}
    assert sorted(p["message"] for p in pushes) == ["From: boss@acme.test\nSubject: Lunch",
                                                    "From: ops@acme.test\nSubject: Server down"]
    wait_until(lambda: len(services.slack("#urgent-emails")) == 2, 15, "two Slack alerts")
    reasons = sorted(m.rsplit("사유: ", 1)[1] for m in services.slack("#urgent-emails"))
    assert reasons == ["urgent-keywords", "vip-sender"]
    assert not any("Photos" in m for m in services.slack("#urgent-emails"))


def test_the_nightly_cleanup_deletes_old_spam_and_reports(app: tuple[RunningHost, Services]) -> None:
    _, services = app
    report = wait_until(lambda: services.slack("#email-reports"), 15, "the cleanup report")
    assert re.fullmatch(r"Email report \d{4}-\d\d-\d\d: \d+ received, \d+ marked as spam", report[0])
    deletes = services.requests("POST", "batchDelete")
    assert [d["body"]["ids"] for d in deletes] == [["old-spam-0", "old-spam-1"]]
    mailbox = httpx.get(f"{services.url}/__mailbox", timeout=10).json()
    assert "old-spam-0" not in mailbox and "m-spam" in mailbox
