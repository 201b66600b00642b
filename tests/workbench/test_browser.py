"""The Workbench in a real browser against a real host running examples/polyglot-hello (TS → Python →
Ruby), with two extra steps: one that fails until it is fixed (dead letters) and one that cannot load."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from browser import chromium, shot

from conftest import REPO, RunningHost, need, wait_until

EXAMPLE = REPO / "examples" / "polyglot-hello"
EXTRA = {
    "steps/charge_step.py": (
        "import pathlib\n"
        'config = {"type": "event", "name": "Charge", "subscribes": ["payment.requested"], "emits": [],\n'
        '          "flows": ["pay"], "infrastructure": {"queue": {"maxRetries": 1}}}\n\n'
        "async def handler(input, context):\n"
        '    if not pathlib.Path(__file__).with_name("charge.ok").exists():\n'
        '        raise RuntimeError("card declined")\n'
        '    context.logger.info("charged", input)\n'),
    "steps/broken.step.js": "export const config = { type: 'api', name: 'Broken', path: '/broken', method: 'GET' }\n"
                            "throw new Error('broken on purpose')\n",
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    need("ruby")
    root = tmp_path_factory.mktemp("wb") / "polyglot-hello"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("node_modules", ".steppe"))
    (root / "node_modules").symlink_to(EXAMPLE / "node_modules")
    for rel, text in EXTRA.items():
        (root / rel).write_text(text)
    running = RunningHost(root, [], {"STEPPE_RETRY_BASE": "0.01", "STEPPE_RETRY_CAP": "0.05"}).wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page(host: RunningHost) -> Iterator[Any]:
    with chromium() as context:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # the confirmations of delete / clear / drop
        yield page


def open_view(page: Any, host: RunningHost, hash_: str) -> None:
    page.goto(f"{host.url}/__steppe/ui/#/{hash_}")
    page.wait_for_selector(f"main[data-view='{hash_.split('/')[0].split('?')[0]}']")


def test_the_page_opens_from_the_root_and_loads_fast(page: Any, host: RunningHost) -> None:
    started = time.monotonic()
    page.goto(f"{host.url}/")
    page.wait_for_selector("[data-node='SayHello']")
    assert page.url.endswith("/__steppe/ui/")
    timing = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
    print(f"first load: {timing['loadEventEnd']:.0f} ms (navigation), {1000 * (time.monotonic() - started):.0f} ms"
          " to the drawn graph")
    assert timing["loadEventEnd"] < 1000
    assert page.text_content("[data-testid='project']") == "polyglot-hello"
    assert "dev" in page.text_content("header")


def test_flows_draw_every_step_and_a_broken_one_red(page: Any, host: RunningHost) -> None:
    open_view(page, host, "flows")
    for name in ("SayHello", "MakeGreeting", "ArchiveGreeting", "Heartbeat", "GetGreeting", "greetings"):
        page.wait_for_selector(f"[data-node='{name}']")
    page.wait_for_selector("[data-edge='step:SayHello>step:MakeGreeting']")
    broken = page.locator("[data-status='error']")
    assert broken.count() == 1 and "node-error" in broken.get_attribute("class")
    stroke = broken.locator("rect").evaluate("el => getComputedStyle(el).stroke")
    assert stroke == "rgb(217, 58, 58)"  # red
    broken.click()
    assert "broken on purpose" in page.text_content("[data-testid='node-error']")
    shot(page, "flows-broken")
    page.select_option("[data-testid='flow-select']", "hello")
    page.wait_for_selector("[data-node='SayHello']")
    assert page.locator("[data-status='error']").count() == 0
    page.click("[data-node='MakeGreeting']")
    page.wait_for_selector("[data-testid='node-details'] >> text=input schema")
    shot(page, "flows")


def test_send_from_endpoints_and_follow_the_trace_across_three_languages(page: Any, host: RunningHost) -> None:
    open_view(page, host, "endpoints")
    page.click("[data-testid='endpoint-list'] li:has-text('/hello')")
    body = page.input_value("[data-testid='request-body']")
    assert '"name"' in body  # pre-filled from bodySchema with a valid example
    page.click("[data-testid='send']")
    assert page.text_content("[data-testid='response-status']", timeout=10_000) == "202"
    assert "requestId" in page.text_content("[data-testid='response-body']")
    shot(page, "endpoints")
    page.click("[data-testid='response-trace']")
    page.wait_for_selector("[data-testid='trace-detail']")
    for step in ("SayHello", "MakeGreeting", "ArchiveGreeting"):
        page.wait_for_selector(f".tl-row[data-step='{step}'][data-status='ok']", timeout=15_000)
    assert page.text_content("[data-testid='trace-languages']") == "node, python, ruby"
    page.click(".tl-row[data-step='MakeGreeting'] .tl-label")
    page.wait_for_selector("text=state.set")
    shot(page, "trace")
    page.click("[data-testid='trace-logs']")  # trace → its logs
    page.wait_for_selector(".log-line:has-text('greeting archived')")
    page.click(".log-line:has-text('greeting stored') a.log-trace")  # and back: log line → trace
    page.wait_for_selector("[data-testid='trace-detail']")
    open_view(page, host, "traces")
    page.wait_for_selector("[data-testid='trace-list'] >> text=SayHello")
    shot(page, "traces")


def test_a_log_line_appears_live(page: Any, host: RunningHost) -> None:
    open_view(page, host, "logs")
    page.wait_for_selector("[data-testid='log-box'] .log-line")
    r = httpx.post(f"{host.url}/hello", json={"name": "Live Tail"})
    request_id = r.json()["requestId"]
    page.wait_for_selector(f".log-line:has-text('{request_id}'):has-text('greeting archived')", timeout=10_000)
    shot(page, "logs")


def test_edit_a_state_value_and_read_it_back_over_http(page: Any, host: RunningHost) -> None:
    request_id = httpx.post(f"{host.url}/hello", json={"name": "Grace"}).json()["requestId"]
    wait_until(lambda: httpx.get(f"{host.url}/greetings/{request_id}").status_code == 200, 10, "the greeting")
    open_view(page, host, "state/greetings")
    row = page.locator(f"[data-key='{request_id}']")
    row.locator("[data-testid='state-edit']").click()
    page.fill("[data-testid='state-value']",
              f'{{"requestId": "{request_id}", "name": "Grace", "text": "Edited in the Workbench"}}')
    page.click("[data-testid='state-save']")
    page.wait_for_selector(f"[data-key='{request_id}'] >> text=Edited in the Workbench")
    shot(page, "state")
    body = httpx.get(f"{host.url}/greetings/{request_id}").json()
    assert "Edited in the Workbench" in str(body)
    later = httpx.post(f"{host.url}/hello", json={"name": "Later"}).json()["requestId"]
    page.wait_for_selector(f"[data-key='{later}']", timeout=10_000)  # a handler's write shows up live


def test_streams_show_items_live(page: Any, host: RunningHost) -> None:
    httpx.post(f"{host.url}/hello", json={"name": "First"})  # the group exists before the page opens
    open_view(page, host, "streams")
    page.click("[data-testid='stream-groups'] button:has-text('all')")  # the stream's groups, with sizes
    page.wait_for_selector("[data-testid='stream-items']")
    request_id = httpx.post(f"{host.url}/hello", json={"name": "Streamed"}).json()["requestId"]
    page.wait_for_selector(f"[data-testid='stream-items'] [data-id='{request_id}']", timeout=10_000)
    shot(page, "streams")


def test_replay_a_dead_letter_after_fixing_the_step(page: Any, host: RunningHost) -> None:
    trace_id = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "payment.requested",
                                                            "data": {"amount": 7}}).json()["traceId"]
    wait_until(lambda: [d for d in httpx.get(f"{host.url}/__steppe/dlq").json()
                        if d["event"]["traceId"] == trace_id], 10, "the dead letter")
    open_view(page, host, "dlq")
    row = page.locator("[data-dlq]").filter(has_text="card declined").first
    row.wait_for()
    shot(page, "dead-letters")
    (host.root / "steps" / "charge.ok").write_text("")  # the fix
    row.locator("[data-testid='dlq-replay']").click()
    page.wait_for_selector("[data-testid='dlq-note'] >> text=1 dead letter(s) queued again")

    def succeeded() -> bool:
        r = httpx.get(f"{host.url}/__steppe/api/traces/{trace_id}")
        return r.status_code == 200 and r.json()["invocations"][-1]["status"] == "ok"

    wait_until(succeeded, 10, "the replayed delivery to succeed")
    page.goto(f"{host.url}/__steppe/ui/#/traces/{trace_id}")
    page.wait_for_selector(".tl-row[data-step='Charge'][data-status='ok']")
    assert page.locator(".tl-row[data-step='Charge'][data-status='error']").count() == 1


def test_run_a_cron_now(page: Any, host: RunningHost) -> None:
    open_view(page, host, "cron")
    row = page.locator("[data-cron='Heartbeat']")
    row.locator("[data-testid='cron-run']").click()
    link = row.locator("text=started >> a")
    link.wait_for()
    trace_id = link.get_attribute("data-trace")
    shot(page, "cron")
    link.click()
    page.wait_for_selector(".tl-row[data-step='Heartbeat'][data-status='ok']", timeout=10_000)
    assert httpx.get(f"{host.url}/__steppe/api/traces/{trace_id}").json()["invocations"][0]["trigger"] == "cron"


def test_runners_and_unrouted_events(page: Any, host: RunningHost) -> None:
    open_view(page, host, "runners")
    for language in ("node", "python", "ruby"):
        page.wait_for_selector(f"[data-runner='{language}']")
    assert page.locator("[data-runner='python'] td").nth(1).text_content().isdigit()  # its pid
    shot(page, "runners")


def test_start_mode_answers_401_without_the_token(tmp_path_factory: pytest.TempPathFactory, page: Any) -> None:
    root = tmp_path_factory.mktemp("wb401") / "polyglot-hello"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("node_modules", ".steppe"))
    (root / "node_modules").symlink_to(EXAMPLE / "node_modules")
    running = RunningHost(root, [], {"STEPPE_ADMIN_TOKEN": "s3cret"}, mode="start").wait_ready()
    try:
        for path in ("/__steppe/ui/", "/__steppe/api/flows", "/__steppe/api/logs"):
            assert httpx.get(f"{running.url}{path}").status_code == 401
        # a fresh context (no cookies) of the module's browser: one Playwright instance per thread
        context = page.context.browser.new_context()
        try:
            page = context.new_page()
            assert page.goto(f"{running.url}/__steppe/ui/").status == 401
            # the browser gets the token once; the HttpOnly cookie carries it from then on
            page.goto(f"{running.url}/__steppe/login?token=s3cret")
            assert page.url.startswith(f"{running.url}/__steppe/ui/")
            cookie = next(c for c in context.cookies() if c["name"] == "steppe_admin")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != "s3cret"
            page.goto(f"{running.url}/__steppe/ui/#/flows")
            page.wait_for_selector("[data-node='SayHello']")
        finally:
            context.close()
        api = httpx.get(f"{running.url}/__steppe/api/flows", headers={"authorization": "Bearer s3cret"})
        assert api.status_code == 200
    finally:
        running.stop()


def test_a_hash_change_right_after_the_first_load_is_followed(page: Any, host: RunningHost) -> None:
    """Seen on main: the router read the hash when the page first drew and subscribed to `hashchange` only in an
    effect run after paint, so a link followed in between (a quick click, a script) left the old view shown."""
    fresh = page.context.new_page()  # its own init script, not the shared page's
    try:
        # DOMContentLoaded fires after the module script has drawn the first view, before effects have run
        fresh.add_init_script("addEventListener('DOMContentLoaded', () => { location.hash = '#/traces' })")
        fresh.goto(f"{host.url}/__steppe/ui/#/flows")
        fresh.wait_for_selector("main[data-view='traces']", timeout=5000)
    finally:
        fresh.close()
