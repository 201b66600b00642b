"""Plays vectors against a runner command: one fresh runner process per vector, so that vectors cannot
disturb each other. The vector format is described in protocol/README.md."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from .client import HostRefusal, RunnerClient, RunnerError
from .loader import Fixtures, absolute_command
from .matcher import Scope, fill, match, short, special
from .schemas import MessageChecker

ANSWER_TIMEOUT_MS = 10_000  # how long any answer may take when a step sets no `within_ms`
VECTOR_TIMEOUT_S = 60
LOG_GRACE_S = 1.0  # log notifications may trail the answer of their invocation a little


@dataclass
class Outcome:
    name: str
    ok: bool
    detail: str
    ms: float
    stderr: str = ""


class Session:
    """One vector against one runner process."""

    def __init__(self, vector: dict[str, Any], argv: list[str], scope: Scope, transport: str = "stdio") -> None:
        self.vector, self.scope = vector, scope
        self.checker = MessageChecker()
        self.calls: list[dict[str, Any]] = []
        self.pending: dict[str, list[asyncio.Future[Any]]] = {}
        self.exited = False
        root = str(scope.fixtures.root)
        # started as the host starts it: in the project root, told the root and its registry name
        env = {"STEPPE_PROJECT_ROOT": root, "STEPPE_RUNNER_NAME": scope.lang}
        self.client = RunnerClient(absolute_command(argv), cwd=root, env=env, on_call=self.answer,
                                   tap=self.checker.observe, transport=transport)

    async def answer(self, method: str, params: dict[str, Any]) -> Any:
        """The host side of a handler's call, as the vector's `hostCalls` says."""
        self.calls.append({"method": method, "params": params})
        spec = self.vector.get("hostCalls", {}).get(method)
        if spec is None:
            raise HostRefusal(-32601, f"the vector gives no answer to {method}", "MethodNotFound")
        if "error" in spec:
            error = spec["error"]
            raise HostRefusal(error["code"], error["message"], error.get("data", {}).get("type", ""))
        result = spec.get("result")
        if (op := special(result)) and op[0] == "$param":
            return params.get(op[1])
        return result

    async def run(self) -> list[str]:
        await self.client.start()
        if self.vector.get("initialize", True):
            params = {"protocolVersion": 1, "projectRoot": str(self.scope.fixtures.root), "host": "steppe-kit/0.1.0"}
            if "maxLine" in self.vector:  # the line limit the vector's runner must keep to (protocol 1.1)
                params["maxLine"] = self.vector["maxLine"]
            if problems := await self._setup("initialize", params):
                return problems
        for name in self.vector.get("load", []):
            fixture = self.scope.fixtures[name]
            if problems := await self._setup("load", {"path": fixture.path, "kind": fixture.kind}):
                return problems
        for number, step in enumerate(self.vector["steps"], 1):
            if problems := await self.step(f"step {number}", step):
                return problems
        return await self.final_checks()

    async def _setup(self, method: str, params: dict[str, Any]) -> list[str]:
        try:
            await self.client.request(method, params, timeout=ANSWER_TIMEOUT_MS / 1000)
            return []
        except RunnerError as e:
            return [f"setup {method} {params.get('path', '')} failed: {short(e.error, 600)}"]
        except (TimeoutError, EOFError) as e:
            return [f"setup {method} {params.get('path', '')}: no answer ({type(e).__name__} {e})"]

    async def step(self, label: str, step: dict[str, Any]) -> list[str]:
        if self.client.proc and self.client.proc.returncode is not None and "exit" not in step:
            return [f"{label}: the runner exited with status {self.client.proc.returncode}"]
        if "send" in step:
            label = f"{label} ({step['send']})"
            params = fill(step.get("params", {}), self.scope)
            futures = []
            for _ in range(step.get("count", 1)):
                rid, future = self.client.request_nowait(step["send"], params)
                # an answer nobody awaits (e.g. an invoke cut short by shutdown) is not an unhandled error
                future.add_done_callback(lambda f: f.cancelled() or f.exception())
                futures.append(future)
            if "as" in step:
                self.scope.ids[step["as"]] = rid
                self.pending[step["as"]] = futures
            if step.get("wait", True):
                return await self.settle(label, futures, step)
        elif "await" in step:
            return await self.settle(f"{label} (await {step['await']})", self.pending[step["await"]], step)
        elif "notify" in step:
            self.client.notify(step["notify"], fill(step.get("params", {}), self.scope))
        elif "raw" in step:
            self.client.send_raw(step["raw"].encode() + b"\n")
        elif "sleep_ms" in step:
            await asyncio.sleep(step["sleep_ms"] / 1000)
        elif "closeStdin" in step:
            self.client.close_stdin()
        elif "exit" in step:
            return await self.wait_exit(label, step)
        else:
            raise ValueError(f"{label}: unknown step {short(step)}")
        return []

    async def settle(self, label: str, futures: list[asyncio.Future[Any]], step: dict[str, Any]) -> list[str]:
        """Wait for the answers and compare them with `expect`, and their time with `within_ms`."""
        started = time.monotonic()
        await asyncio.wait(futures, timeout=ANSWER_TIMEOUT_MS / 1000)
        ms = (time.monotonic() - started) * 1000
        if missing := sum(not f.done() for f in futures):
            return [f"{label}: {missing} of {len(futures)} answers missing after {ms:.0f} ms"]
        problems = []
        if (limit := step.get("within_ms")) is not None and ms > limit:
            problems.append(f"{label}: answered in {ms:.0f} ms, more than {limit} ms")
        expect = step.get("expect", {})
        for future in futures:
            error = future.exception()
            if error is not None and not isinstance(error, RunnerError):
                return problems + [f"{label}: no answer ({error}{await self._exit_status()})"]
            got = {"error": error.error} if isinstance(error, RunnerError) else {"result": future.result()}
            if "result" in expect and "error" in got:
                problems.append(f"{label}: expected a result, got error {short(got['error'], 600)}")
            elif "error" in expect and "result" in got:
                problems.append(f"{label}: expected an error, got result {short(got['result'], 600)}")
            else:
                for key in expect:
                    problems += match(expect[key], got[key], self.scope, f"{label} {key}")
            if problems:
                break  # in a batch of equal requests one bad answer tells enough
        return problems

    async def _exit_status(self) -> str:
        try:
            return f", exit status {await self.client.wait_exit(1)}"
        except TimeoutError:
            return ""

    async def wait_exit(self, label: str, step: dict[str, Any]) -> list[str]:
        limit = step.get("within_ms", ANSWER_TIMEOUT_MS)
        try:
            code = await self.client.wait_exit(limit / 1000)
        except TimeoutError:
            return [f"{label}: the runner did not exit within {limit} ms"]
        self.exited = True
        return [] if code == step["exit"] else [f"{label}: exit status {code}, expected {step['exit']}"]

    async def final_checks(self) -> list[str]:
        problems = []
        if "calls" in self.vector:
            expected, got = self.vector["calls"], self.calls
            if len(expected) != len(got):
                problems.append(f"host calls: expected {[c['method'] for c in expected]}, got "
                                f"{short(got, 600)}")
            else:
                for i, (e, g) in enumerate(zip(expected, got, strict=True)):
                    problems += match(e, g, self.scope, f"host call {i + 1}")
        deadline = time.monotonic() + LOG_GRACE_S
        for i, wanted in enumerate(self.vector.get("logs", [])):
            while not any(not match(wanted, log, self.scope) for log in self.client.logs):
                if time.monotonic() > deadline:
                    problems.append(f"log {i + 1}: no log notification matches {short(wanted)}; got "
                                    f"{short(self.client.logs, 600)}")
                    break
                await asyncio.sleep(0.02)
        if not self.exited:
            # every vector ends with proof that the runner is still up and reading
            try:
                if (pong := await self.client.request("ping", {}, timeout=3)) != "pong":
                    problems.append(f"final ping: answered {short(pong)} instead of \"pong\"")
            except (TimeoutError, RunnerError, EOFError) as e:
                problems.append(f"final ping: no pong ({type(e).__name__}: {e}); the runner is down or stuck")
        return problems

    def hygiene(self) -> list[str]:
        """Problems any vector can reveal: stray stdout lines and messages off the schemas."""
        problems = list(self.checker.problems)
        if garbage := self.client.garbage:
            problems.append(f"{len(garbage)} non-protocol line(s) on stdout, first: {garbage[0][:200]!r}")
        return problems


async def run_vector(vector: dict[str, Any], argv: list[str], lang: str, fixtures: Fixtures,
                     markers: list[str], transport: str = "stdio") -> Outcome:
    session = Session(vector, argv, Scope(lang, fixtures, markers), transport)
    started = time.monotonic()
    try:
        problems = await asyncio.wait_for(session.run(), VECTOR_TIMEOUT_S)
    except TimeoutError:
        problems = [f"the vector did not finish within {VECTOR_TIMEOUT_S} s"]
    except (OSError, KeyError, ValueError) as e:
        problems = [f"kit could not play the vector: {type(e).__name__}: {e}"]
    ms = (time.monotonic() - started) * 1000
    try:
        await session.client.close(timeout=3)
    except OSError:
        pass  # the runner closed its stdin first; its exit was checked by the vector if it mattered
    problems += session.hygiene()
    return Outcome(vector["name"], not problems, "\n".join(problems), ms, "".join(session.client.stderr))


async def run_all(vectors: list[dict[str, Any]], argv: list[str], lang: str, fixtures: Fixtures,
                  markers: list[str], transport: str = "stdio") -> list[Outcome]:
    # one after the other: the timing vectors must not compete with each other for the CPU
    return [await run_vector(v, argv, lang, fixtures, markers, transport) for v in vectors]
