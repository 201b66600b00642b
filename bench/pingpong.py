"""S5 load generator, run as its own process: `ping` round trips from Python to one language's process.

    python -m bench.pingpong --lang node --impl rpc|bare --seq 5000 --pipe 20000

`rpc` starts Steppe's runner with the host's own RunnerRegistry + RunnerProcess and sends `ping` through
its RpcConnection; `bare` starts bench/echo/echo.<ext> under the same interpreter and talks newline JSON
over the same kind of pipe with the same event loop (uvloop, as the host uses) and orjson, no framework.
Sequential: one ping at a time, latency of each. Pipelined: all pings written at once, then all answers
awaited. Prints one JSON object: {"p50_us", "p99_us", "pipe_msgs_s"} (pipe_msgs_s null with --pipe 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from .stats import percentile

ECHO = Path(__file__).resolve().parent / "echo"
ECHO_FILES = {"python": "echo.py", "node": "echo.js", "ruby": "echo.rb"}


class Bare:
    """A bare echo child: write a JSON line, read a JSON line."""

    async def start(self, command: list[str]) -> None:
        self.proc = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                         stdout=asyncio.subprocess.PIPE)
        assert self.proc.stdin and self.proc.stdout
        self.w, self.r = self.proc.stdin, self.proc.stdout
        self.ids = 0

    def send(self) -> None:
        self.ids += 1
        self.w.write(orjson.dumps({"jsonrpc": "2.0", "id": self.ids, "method": "ping", "params": {}}) + b"\n")

    async def receive(self) -> None:
        msg = orjson.loads(await self.r.readline())
        assert msg["result"] == "pong", msg

    async def ping(self) -> None:
        self.send()
        await self.receive()

    async def burst(self, n: int) -> None:
        for _ in range(n):
            self.send()
        for _ in range(n):
            await self.receive()

    async def stop(self) -> None:
        self.w.close()
        await self.proc.wait()


class Runner:
    """Steppe's runner for the language, through the host's own classes."""

    async def start(self, lang: str, root: Path) -> None:
        from steppe.runners import RunnerProcess, RunnerRegistry

        async def no_requests(method: str, params: dict[str, Any]) -> Any:
            raise RuntimeError(f"unexpected request {method}")

        self.proc = RunnerProcess(RunnerRegistry(project_root=root).get(lang), root, on_request=no_requests,
                                  on_log=lambda record: None)
        await self.proc.start()
        assert self.proc.rpc
        self.rpc = self.proc.rpc

    async def ping(self) -> None:
        assert await self.rpc.call("ping", {}) == "pong"

    async def burst(self, n: int) -> None:
        futures = [self.rpc.request("ping", {})[1] for _ in range(n)]
        assert all(r == "pong" for r in await asyncio.gather(*futures))

    async def stop(self) -> None:
        await self.proc.stop()


async def measure(lang: str, impl: str, seq: int, pipe: int, warm: int) -> dict[str, float | None]:
    from steppe.runners import RunnerRegistry

    with tempfile.TemporaryDirectory(prefix="steppe-bench-ping-") as tmp:
        peer: Bare | Runner
        if impl == "bare":
            interpreter = RunnerRegistry(project_root=Path(tmp)).get(lang).command[0]
            peer = Bare()
            await peer.start([interpreter, str(ECHO / ECHO_FILES[lang])])
        else:
            peer = Runner()
            await peer.start(lang, Path(tmp))
        try:
            for _ in range(warm):
                await peer.ping()
            if pipe:
                await peer.burst(min(pipe, 1000))
            latencies = []
            for _ in range(seq):
                t0 = time.perf_counter_ns()
                await peer.ping()
                latencies.append((time.perf_counter_ns() - t0) / 1000)
            pipe_msgs_s = None  # --pipe 0: sequential pings only (S9 needs no more)
            if pipe:
                t0 = time.perf_counter_ns()
                await peer.burst(pipe)
                pipe_msgs_s = pipe / ((time.perf_counter_ns() - t0) / 1e9)
        finally:
            await peer.stop()
    return {"p50_us": percentile(latencies, 50), "p99_us": percentile(latencies, 99), "pipe_msgs_s": pipe_msgs_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lang", choices=sorted(ECHO_FILES), required=True)
    ap.add_argument("--impl", choices=["rpc", "bare"], required=True)
    ap.add_argument("--seq", type=int, default=5000)
    ap.add_argument("--pipe", type=int, default=20000)
    ap.add_argument("--warm", type=int, default=500)
    args = ap.parse_args()
    coro = measure(args.lang, args.impl, args.seq, args.pipe, args.warm)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(coro)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
