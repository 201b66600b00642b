"""Secrets never reach the logs: a step in each language logs request headers and a nested password;
the host's printed log and `/__steppe/logs` hold `[REDACTED]`, never the secret."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from conftest import IN_CI, RunningHost, wait_until, write_project
from steppe.redact import MASK, Redactor

pytestmark = pytest.mark.timeout(90)

SECRETS = ("tok-SECRET", "COOKIE-SECRET", "hunter2", "dXNlcjpzZWNyZXQ")

STEPS = {
    "steps/py_leak_step.py": """
        import os

        config = {"type": "api", "name": "PyLeak", "path": "/leak/py", "method": "GET", "emits": []}

        def handler(req, context):
            headers = req["headers"]
            context.logger.info("request", {"headers": headers, "user": {"profile": [{"password": "hunter2"}]}})
            context.logger.info(f"calling upstream with Authorization: {headers['authorization']}")
            print({"authorization": headers["authorization"], "cookie": headers["cookie"]})
            print("retry with Basic dXNlcjpzZWNyZXQ=")
            return {"status": 200, "body": {"keys": os.environ.get("STEPPE_REDACT_KEYS")}}
    """,
    "steps/js_leak.step.js": """
        exports.config = { type: 'api', name: 'JsLeak', path: '/leak/js', method: 'GET', emits: [] }
        exports.handler = async (req, { logger }) => {
          logger.info('request', { headers: req.headers, user: { profile: [{ password: 'hunter2' }] } })
          logger.info(`calling upstream with Authorization: ${req.headers.authorization}`)
          console.log(req.headers)
          console.log('retry with Basic dXNlcjpzZWNyZXQ=')
          return { status: 200, body: { keys: process.env.STEPPE_REDACT_KEYS } }
        }
    """,
    "steps/rb_leak_step.rb": """
        def config
          { type: 'api', name: 'RbLeak', path: '/leak/rb', method: 'GET', emits: [] }
        end

        def handler(req, context)
          context.logger.info('request', { headers: req.headers, user: { profile: [{ password: 'hunter2' }] } })
          context.logger.info("calling upstream with Authorization: #{req.headers['authorization']}")
          p({ 'authorization' => req.headers['authorization'], 'cookie' => req.headers['cookie'] })
          puts 'retry with Basic dXNlcjpzZWNyZXQ='
          { status: 200, body: { keys: ENV['STEPPE_REDACT_KEYS'] } }
        end
    """,
}


def _languages() -> list[str]:
    langs = ["py", "js"]
    if shutil.which("ruby"):
        langs.append("rb")
    elif IN_CI:
        pytest.fail("ruby is required under CI")
    return langs


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory):
    root = write_project(tmp_path_factory.mktemp("redact"), STEPS)
    running = RunningHost(root, [], {"STEPPE_REDACT_KEYS": "password,token,customsecret"}, mode="start")
    running.wait_ready()
    yield running
    running.stop()


@pytest.mark.parametrize("lang", ["py", "js", "rb"])
def test_a_step_logging_headers_and_a_nested_password_leaves_only_redacted_logs(host: RunningHost, lang: str):
    if lang not in _languages():
        pytest.skip("ruby not installed")
    headers = {"Authorization": "Bearer tok-SECRET-1", "Cookie": "sid=COOKIE-SECRET"}
    resp = httpx.get(f"{host.url}/leak/{lang}", headers=headers, timeout=15)
    assert resp.status_code == 200, resp.text
    # the runner was told the host's keys
    assert resp.json() == {"keys": "password,token,customsecret"}
    step = {"py": "PyLeak", "js": "JsLeak", "rb": "RbLeak"}[lang]

    def records() -> list:
        rows = host.admin_get("/__steppe/logs", params={"step": step}).json()
        rows = rows["logs"] if isinstance(rows, dict) else rows
        return rows if any(r["msg"].startswith("retry with") for r in rows) else []

    rows = wait_until(records, 10, f"the log records of {step}")
    kept = host.admin_get("/__steppe/logs", params={"step": step}).text
    printed = host.wait_log("retry with Basic", 10)
    for text in (kept, printed):
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into the logs of {lang}"
    assert MASK in kept
    structured = next(r for r in rows if r["msg"] == "request")
    assert structured["fields"]["headers"]["authorization"] == MASK
    assert structured["fields"]["headers"]["cookie"] == MASK
    assert structured["fields"]["user"]["profile"] == [{"password": MASK}]
    assert structured["fields"]["headers"]["host"].startswith("127.0.0.1")  # the rest is kept
    assert any(r["msg"] == "calling upstream with Authorization: [REDACTED]" for r in rows)
    assert any(r["msg"] == "retry with Basic [REDACTED]" for r in rows)


def test_the_host_log_book_redacts_every_record_whatever_its_source(tmp_path: Path):
    from steppe.logs import LogBook

    out = (tmp_path / "out.log").open("w")
    book = LogBook(pretty=False, out=out)
    book.redactor = Redactor("password,customsecret")
    book.write("info", "login failed for token=abc", source="uvicorn.error",
               fields={"list": [{"deep": {"x-customsecret-id": "zzz", "ok": "Bearer abc.def"}}],
                       "userPassword": "p1", "tokens": 3})
    out.close()
    [record] = book.query()
    assert record["fields"] == {"list": [{"deep": {"x-customsecret-id": MASK, "ok": f"Bearer {MASK}"}}],
                                "userPassword": MASK, "tokens": 3}
    # `token` is not among this host's keys: "token=abc" stays
    assert record["msg"] == "login failed for token=abc"
    printed = (tmp_path / "out.log").read_text()
    assert "zzz" not in printed and "p1" not in printed and "abc.def" not in printed


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer abc.def-ghi", "Authorization: [REDACTED]"),
    ("got Bearer abc.def", "got Bearer [REDACTED]"),
    ('x {"authorization": "Bearer xyz", "cookie": "a=1"}', 'x {"authorization": "[REDACTED]", "cookie": "[REDACTED]"}'),
    ("{'set-cookie': 'sid=1'}", "{'set-cookie': '[REDACTED]'}"),
    ("password=hunter2&user=bob", "password=[REDACTED]&user=bob"),
    ("API_KEY: k-123", "API_KEY: [REDACTED]"),
    ("Basic setup done", "Basic setup done"),  # prose, not base64 of user:password
    ("auth Basic dXNlcjpwdw==", "auth Basic [REDACTED]"),
    ("tokens used=5", "tokens used=5"),  # a key is secret by its name, not its neighbours
])
def test_redaction_rules_for_text(text: str, expected: str):
    assert Redactor().text(text) == expected


def test_keys_match_as_substrings_ignoring_case_dashes_and_underscores():
    r = Redactor()
    for key in ("userPassword", "X-Api-Key", "db_password_hash", "Proxy-Authorization", "SET-COOKIE",
                "privateKey", "clientSecret", "refresh_token"):
        assert r.secret_key(key), key
    for key in ("user", "host", "content-type", "count"):
        assert not r.secret_key(key), key
    # a value nested past the depth bound is replaced whole rather than walked
    deep: object = "x"
    for _ in range(150):
        deep = [deep]
    assert "nested deeper" in str(r.value(deep))
