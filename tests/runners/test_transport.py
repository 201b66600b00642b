"""Protocol 1.1 in each real runner: the pipe pair of STEPPE_RPC_FDS, the registry name, and the line limit
the host passes (STEPPE_MAX_LINE, or `maxLine` in initialize)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import need

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("steppe_protocol_kit_client", REPO / "protocol" / "kit" / "client.py")
assert _spec and _spec.loader
kit = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = kit
    _spec.loader.exec_module(kit)

pytestmark = pytest.mark.timeout(30)
LANGUAGES = ["python", "node", "ruby"]


def command(lang: str) -> list[str]:
    if lang == "python":
        return [sys.executable, str(REPO / "runners" / "python" / "runner.py")]
    if lang == "node":
        return [need("node"), str(REPO / "runners" / "node" / "runner.js")]
    return [need("ruby"), str(REPO / "runners" / "ruby" / "runner.rb")]


async def started(lang: str, tmp_path: Path, env: dict[str, str]) -> kit.RunnerClient:
    client = kit.RunnerClient(command(lang), cwd=str(tmp_path), env=env, transport="fds")
    await client.start()
    return client


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_answers_under_the_registry_name_it_is_given(lang, tmp_path):
    client = await started(lang, tmp_path, {"STEPPE_RUNNER_NAME": f"my-{lang}"})
    try:
        info = await client.request("initialize", {"protocolVersion": 1, "projectRoot": str(tmp_path),
                                                   "host": "test"})
        assert info["language"] == f"my-{lang}"
    finally:
        assert await client.close() == 0


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("how", ["env", "initialize"])
async def test_a_line_over_the_host_s_limit_is_dropped_and_the_runner_goes_on(lang, how, tmp_path):
    client = await started(lang, tmp_path, {"STEPPE_MAX_LINE": "1000"} if how == "env" else {})
    try:
        params = {"protocolVersion": 1, "projectRoot": str(tmp_path), "host": "test"}
        await client.request("initialize", params if how == "env" else {**params, "maxLine": 1000})
        client.send_raw(b'{"jsonrpc":"2.0","id":99,"method":"ping","params":{"pad":"' + b"x" * 5000 + b'"}}\n')
        assert await client.request("ping", {}) == "pong"
        for _ in range(100):
            if any("longer than 1000 bytes" in line for line in client.stderr):
                break
            await asyncio.sleep(0.02)
        assert any("dropped a message longer than 1000 bytes" in line for line in client.stderr), client.stderr
        assert await client.request("ping", {}) == "pong"
    finally:
        assert await client.close() == 0


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_every_line_of_a_chunk_is_answered_and_a_line_cut_across_writes_too(lang, tmp_path):
    """The runners answer a whole chunk of lines before writing (in one write): none may be lost or
    reordered, and a message cut between two writes of the host is still read whole."""
    client = await started(lang, tmp_path, {})
    try:
        await client.request("initialize", {"protocolVersion": 1, "projectRoot": str(tmp_path), "host": "test"})
        loop = asyncio.get_running_loop()
        ids = list(range(1000, 1300))
        futures = []
        for rid in ids:  # registered as the kit's own requests, then sent as one write
            fut = loop.create_future()
            client._pending[rid] = fut
            futures.append(fut)
        data = b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"ping","params":{}}\n' % rid for rid in ids)
        cut = len(data) - 20  # inside the last message
        client.send_raw(data[:cut])
        done, _ = await asyncio.wait(futures[:-1], timeout=10)
        assert len(done) == len(ids) - 1 and all(f.result() == "pong" for f in done)
        assert not futures[-1].done()  # its newline has not come yet
        client.send_raw(data[cut:])
        assert await asyncio.wait_for(futures[-1], 10) == "pong"
        assert client.garbage == []
    finally:
        assert await client.close() == 0
