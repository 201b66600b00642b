"""Run with `pytest tests`. The integration tests start `steppe dev` on this project (one host for the module)."""

import asyncio
from pathlib import Path

from steppe.testing import HostTester, MockContext, host_fixture, load_step

ROOT = Path(__file__).resolve().parent.parent
tester = host_fixture(ROOT)


def test_remember_counts_unit():
    step = load_step(ROOT / "steps" / "remember_step.py")
    ctx = MockContext(state={"greeted": {"Ada": 2}}, config=step.config)  # config: emits are checked as the host does
    asyncio.run(step.handler({"name": "Ada"}, ctx))
    assert ctx.state.data["greeted"]["Ada"] == 3


def test_hello_flow(tester: HostTester):
    r = tester.call_api("/hello", {"name": "Ada"})
    assert r.status_code == 200 and r.json() == {"greeting": "Hello, Ada!"}
    tester.wait_idle()
    assert "hello.said" in tester.emitted_topics()
    assert tester.get_state("greeted", "Ada") == 1


def test_empty_name_is_refused(tester: HostTester):
    assert tester.call_api("/hello", {"name": ""}).status_code == 400
