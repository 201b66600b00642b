"""Cron firing without overlap, `steppe emit` into a running host, state TTL from a handler."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from conftest import write_project


def test_cron_fires_every_second_without_overlapping_runs(tmp_path, start_host):
    root = write_project(tmp_path, {
        "steps/tick.step.js": """
            export const config = { type: 'cron', name: 'Tick', cron: '* * * * * *', emits: [] }
            export const handler = async ({ state }) => {
              const running = await state.get('tick', 'running')
              await state.set('tick', 'overlap', running ? true : ((await state.get('tick', 'overlap')) ?? false))
              await state.set('tick', 'running', true)
              await state.set('tick', 'runs', ((await state.get('tick', 'runs')) ?? 0) + 1)
              await new Promise((r) => setTimeout(r, 2200))
              await state.set('tick', 'running', false)
            }
        """,
        "steps/read_step.py": """
            config = {"type": "api", "name": "Read", "path": "/tick", "method": "GET", "emits": []}
            async def handler(req, context):
                return {"status": 200, "body": {k: await context.state.get("tick", k) for k in ("runs", "overlap")}}
        """,
    })
    host = start_host(root)
    time.sleep(5.5)
    body = httpx.get(f"{host.url}/tick").json()
    assert 2 <= body["runs"] <= 3, body  # a 2.2 s run every second: most ticks are skipped
    assert body["overlap"] is False
    assert "previous run still in progress; skipping this tick" in host.logs()


def test_steppe_emit_reaches_a_running_host(tmp_path, start_host):
    root = write_project(tmp_path, {
        "steps/store_step.py": """
            config = {"type": "event", "name": "Store", "subscribes": ["note.added"], "emits": [],
                      "input": {"type": "object", "required": ["text"]}}
            def handler(input, context):  # a plain def: runs in a thread, calls return values directly
                context.state.set("notes", "last", input, ttl=1)
                context.logger.info("stored", {"text": input["text"]})
        """,
        "steps/read_step.py": """
            config = {"type": "api", "name": "ReadNote", "path": "/note", "method": "GET", "emits": []}
            async def handler(req, context):
                return {"status": 200, "body": await context.state.get("notes", "last")}
        """,
    })
    host = start_host(root)
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "emit", "--port", str(host.port), "--topic",
                          "note.added", "--data", '{"text": "hi"}'], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert '"deliveries":1' in out.stdout
    deadline = time.monotonic() + 10
    while httpx.get(f"{host.url}/note").json() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(f"{host.url}/note").json() == {"text": "hi"}
    time.sleep(1.2)
    assert httpx.get(f"{host.url}/note").json() is None  # the ttl=1 set expired
    # an event that fails the step's input schema is not run: it goes to the dead-letter store at once
    subprocess.run([sys.executable, "-m", "steppe.cli", "emit", "--port", str(host.port), "--topic",
                    "note.added", "--data", '{"nope": 1}'], check=True, capture_output=True, timeout=30)
    deadline = time.monotonic() + 10
    while not (dead := httpx.get(f"{host.url}/__steppe/dlq").json()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dead[0]["step"] == "Store" and dead[0]["attempts"] == 1
    assert "missing the required field 'text'" in dead[0]["error"] and dead[0]["event"]["data"] == {"nope": 1}
    bad = subprocess.run([sys.executable, "-m", "steppe.cli", "emit", "--port", str(host.port), "--topic", "x",
                          "--data", "{oops"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr


def _cli(*args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppe.cli", *args], capture_output=True, text=True, timeout=30,
                          stdin=stdin)


def test_a_usage_mistake_is_one_line_from_the_command_that_was_used(tmp_path):
    """Seen: `steppe dlq list --bogus` said `steppe: error: ...` (the top command), not the `steppe dlq` form
    cli.md shows; `steppe create -i` with no terminal printed a 40-line EOFError traceback."""
    for args, prog in ((["dlq", "list", "--bogus"], "steppe dlq"), (["list", "--bogus"], "steppe list"),
                       (["dev", "--root", str(tmp_path), "--nope"], "steppe dev")):
        done = _cli(*args)
        assert done.returncode == 2, done
        assert done.stderr == f"{prog}: error: unrecognized arguments: {args[-1]} (see `{prog} --help`)\n", done.stderr
    asked = _cli("create", "-i", str(tmp_path / "app"), stdin=subprocess.DEVNULL)
    assert asked.returncode == 2 and "Traceback" not in asked.stderr, asked.stderr
    assert asked.stderr.startswith("error: steppe create -i asks in a terminal") and len(asked.stderr.splitlines()) == 1
    assert not (tmp_path / "app").exists()


def test_steps_named_with_a_slash_can_be_run_and_looked_at_by_name(tmp_path, start_host):
    """Seen: steps named `c/ron` and `a/b` loaded, but `steppe cron run c/ron`, POST /__steppe/cron/c%2Fron/run,
    the Workbench's run-now and GET /__steppe/api/steps/a%2Fb/invocations all answered 404."""
    root = write_project(tmp_path, {
        "steps/ron_step.py": """
            config = {"type": "cron", "name": "c/ron", "cron": "0 0 1 1 *", "emits": []}

            async def handler(ctx):
                await ctx.state.set("ran", "c/ron", True)
        """,
        "steps/ab_step.py": """
            config = {"type": "api", "name": "a/b", "path": "/ab", "method": "GET", "emits": []}

            async def handler(req, ctx):
                return {"status": 200}
        """,
    })
    host = start_host(root)
    done = subprocess.run([sys.executable, "-m", "steppe.cli", "cron", "run", "c/ron", "--port", str(host.port),
                           "--root", str(root)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert httpx.post(f"{host.url}/__steppe/api/cron/c%2Fron/run").status_code == 202  # the Workbench runs it behind
    assert httpx.get(f"{host.url}/__steppe/state/ran/c%2Fron").json()["value"] is True
    assert httpx.get(f"{host.url}/ab").status_code == 200
    seen = httpx.get(f"{host.url}/__steppe/api/steps/a%2Fb/invocations")
    assert seen.status_code == 200, seen.text
    deadline = time.monotonic() + 10
    while not httpx.get(f"{host.url}/__steppe/api/steps/a%2Fb/invocations").json():
        assert time.monotonic() < deadline, "the invocation of a/b listed"
        time.sleep(0.05)
