"""Run with `pytest tests`. The tests start `steppe dev` on this project (one host for the module)."""

from pathlib import Path

from steppe.testing import HostTester, host_fixture

tester = host_fixture(Path(__file__).resolve().parent.parent)


def test_hello_flow(tester: HostTester):
    r = tester.call_api("/hello", {"name": "Ada"})
    assert r.status_code == 200 and r.json() == {"greeting": "Hello, Ada!"}
    tester.wait_idle()
    assert "hello.said" in tester.emitted_topics()
    assert tester.get_state("greeted", "Ada") == 1


def test_empty_name_is_refused(tester: HostTester):
    assert tester.call_api("/hello", {"name": ""}).status_code == 400
