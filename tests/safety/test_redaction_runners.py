"""Each runner redacts its own log notifications (logger and captured output) with the keys the host
passes in STEPPE_REDACT_KEYS, before anything leaves the runner process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, need, write_project

_spec = importlib.util.spec_from_file_location("steppe_protocol_kit_client", REPO / "protocol" / "kit" / "client.py")
assert _spec and _spec.loader
kit = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = kit
    _spec.loader.exec_module(kit)

pytestmark = pytest.mark.timeout(30)

FILES = {
    "python": ("steps/leak_step.py", """
        config = {"type": "event", "name": "Leak", "subscribes": ["x"], "emits": []}

        def handler(data, context):
            context.logger.info("fields", {"outer": [{"customSecret": "c-1", "password": "visible-1"}]})
            print("header authorization: Bearer tok-2 and customsecret=c-2")
    """),
    "node": ("steps/leak.step.js", """
        exports.config = { type: 'event', name: 'Leak', subscribes: ['x'], emits: [] }
        exports.handler = async (data, { logger }) => {
          logger.info('fields', { outer: [{ customSecret: 'c-1', password: 'visible-1' }] })
          console.log('header authorization: Bearer tok-2 and customsecret=c-2')
        }
    """),
    "ruby": ("steps/leak_step.rb", """
        def config
          { type: 'event', name: 'Leak', subscribes: ['x'], emits: [] }
        end

        def handler(_data, context)
          context.logger.info('fields', { outer: [{ customSecret: 'c-1', password: 'visible-1' }] })
          puts 'header authorization: Bearer tok-2 and customsecret=c-2'
        end
    """),
}


def _command(language: str) -> list[str]:
    if language == "python":
        return [sys.executable, str(REPO / "runners" / "python" / "runner.py")]
    if language == "node":
        return [need("node"), str(REPO / "runners" / "node" / "runner.js")]
    return [need("ruby"), str(REPO / "runners" / "ruby" / "runner.rb")]


@pytest.mark.parametrize("language", ["python", "node", "ruby"])
async def test_runner_redacts_with_the_keys_the_host_passes(tmp_path: Path, language: str):
    command = _command(language)
    rel, text = FILES[language]
    root = write_project(tmp_path, {rel: text})
    client: Any = kit.RunnerClient(command, cwd=str(root), env={"STEPPE_REDACT_KEYS": "customsecret"})
    await client.start()
    try:
        await client.request("initialize", {"protocolVersion": 1, "projectRoot": str(root), "host": "steppe/test"})
        await client.request("load", {"path": str(root / rel), "kind": "step"})
        await client.request("invoke", {"path": str(root / rel), "step": "Leak", "trigger": "event",
                                         "input": {}, "traceId": "t-1", "flows": []})
        logs = client.logs
        structured = next(p for p in logs if p["msg"] == "fields")
        # the configured key is masked at depth; `password` is not a configured key here, so it stays
        assert structured["fields"] == {"outer": [{"customSecret": "[REDACTED]", "password": "visible-1"}]}
        printed = [p["msg"] for p in logs if p.get("source") == "stdout"]
        assert printed == ["header authorization: [REDACTED] and customsecret=[REDACTED]"]
    finally:
        await client.close()
