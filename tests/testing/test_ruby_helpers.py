"""The Ruby test helpers (host/testing/ruby/steppe/testing.rb, `require "steppe/testing"`): their minitest suite
against a real step file, and the same step under a real host, whose Ruby runner must tell the handler what the
mock tells it (the same refusals, by class, type and message, and the same stored values)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx

from conftest import REPO, need, wait_until
from steppe.testing import RUBY_LIB

HERE = Path(__file__).parent / "ruby"
PROJECT = HERE / "project"
# an order that ships, then one each whose emit a real run refuses: an undeclared topic, a messageGroupId that is
# not text, a Time in the data (steps/ship_step.rb)
INPUTS = [{"id": "o-1", "items": ["tea"], "group": "c-1"}, {"id": "o-2", "topic": "order.lost"},
          {"id": "o-3", "group": ["a"]}, {"id": "o-4", "stamp": True}]
UNDER_MOCK = """
require 'json'
require 'steppe/testing'
step = Steppe::Testing.load_step(ARGV[0])
ctx = Steppe::Testing::MockContext.new(topic: 'order.paid', config: step.config)
JSON.parse(ARGV[1]).each { |input| step.handler.call(input, ctx) }
puts JSON.generate({ state: ctx.state.data, emitted: ctx.emitted })
"""


def test_ruby_lib_is_the_folder_to_put_on_the_load_path() -> None:
    assert RUBY_LIB == REPO / "host" / "testing" / "ruby"
    assert (RUBY_LIB / "steppe" / "testing.rb").is_file()


def test_the_minitest_suite_passes() -> None:
    done = subprocess.run([need("ruby"), "-I", "host/testing/ruby", "tests/testing/ruby/mock_test.rb"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 failures, 0 errors" in done.stdout and " 0 runs" not in done.stdout, done.stdout


def test_the_real_ruby_runner_tells_the_handler_what_the_mock_tells_it(tmp_path: Path, start_host) -> None:
    ruby = need("ruby")
    mocked = subprocess.run([ruby, "-I", str(RUBY_LIB), "-e", UNDER_MOCK, str(PROJECT / "steps" / "ship_step.rb"),
                             json.dumps(INPUTS)], capture_output=True, text=True, timeout=60)
    assert mocked.returncode == 0, mocked.stderr
    mock = json.loads(mocked.stdout)

    root = tmp_path / "project"
    shutil.copytree(PROJECT, root)
    host = start_host(root)
    for data in INPUTS:
        r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "order.paid", "data": data}, timeout=10)
        assert r.status_code == 202, r.text

    def state(group: str, key: str) -> object:
        r = host.admin_get(f"/__steppe/state/{group}/{key}", timeout=5)
        return r.json()["value"] if r.status_code == 200 else None

    refusals = {key: wait_until(lambda key=key: state("refusals", key), 20, f"the refusal of {key}:\n{host.logs()}")
                for key in ("o-2", "o-3", "o-4")}
    assert refusals == mock["state"]["refusals"]
    assert refusals["o-2"]["class"] == "Steppe::HostError" and refusals["o-2"]["type"] == "UndeclaredTopic"
    assert refusals["o-2"]["message"] == ("step 'Ship' emitted topic 'order.lost', which is not in its config.emits "
                                          "['order.shipped']; the event was not sent")
    assert refusals["o-3"]["type"] == "InvalidParams" and refusals["o-4"]["class"] == "TypeError"
    # what was stored is what the mock kept (symbols as text), and the one accepted emit is the mock's
    assert {key: state("orders", key) for key in ("o-1", "o-2", "o-3", "o-4")} == mock["state"]["orders"]
    sent = [e for e in host.admin_get("/__steppe/emitted", timeout=5).json() if e["topic"] != "order.paid"]
    assert [{k: e.get(k) for k in ("topic", "data", "messageGroupId")} for e in sent] == mock["emitted"]
