"""A real host for integration tests: `steppe dev` on a project as a subprocess, with memory stores, on a
free port, driven over HTTP and the admin API (`/__steppe/...`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

Scope = Literal["session", "package", "module", "class", "function"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HostTester:
    """Starts `steppe dev` on `root` (memory bus, state and streams; its data directory in a temporary
    folder, so a host you run yourself on the project is not disturbed).

        with HostTester("path/to/project") as tester:
            r = tester.call_api("/orders", {"item": "tea"})
            tester.wait_idle()
            assert "order.created" in tester.emitted_topics()
    """

    def __init__(self, root: str | Path = ".", *, env: dict[str, str] | None = None, port: int | None = None,
                 start_timeout: float = 60.0) -> None:
        self.root = Path(root).resolve()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        self._env = env or {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.output_path: Path | None = None
        token = os.environ.get("STEPPE_ADMIN_TOKEN") or self._env.get("STEPPE_ADMIN_TOKEN")
        self.http = httpx.Client(base_url=self.url, timeout=30,
                                 headers={"authorization": f"Bearer {token}"} if token else None)

    # --- life cycle ---
    def start(self) -> HostTester:
        if self.proc is not None:
            return self
        self._tmp = tempfile.TemporaryDirectory(prefix="steppe-test-")
        self.output_path = Path(self._tmp.name) / "host.log"
        env = {**os.environ, "STEPPE_BUS": "memory", "STEPPE_STATE": "memory", "STEPPE_STREAMS": "memory",
               "STEPPE_DATA_DIR": str(Path(self._tmp.name) / "data"), "STEPPE_PARENT_PID": str(os.getpid()),
               **self._env}
        with self.output_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "steppe.cli", "dev", "--root", str(self.root), "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"steppe dev exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.http.get("/__steppe/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"steppe dev did not answer within {self.start_timeout}s:\n{self.output()}")

    def stop(self) -> int | None:
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            code = self.proc.returncode
            self.proc = None
        self.http.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return code

    def __enter__(self) -> HostTester:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def output(self) -> str:
        """What the host printed so far (its terminal log)."""
        return self.output_path.read_text(errors="replace") if self.output_path and self.output_path.exists() else ""

    # --- driving it ---
    def call_api(self, path: str, body: Any = None, *, method: str | None = None,
                 headers: dict[str, str] | None = None, query: dict[str, Any] | None = None) -> httpx.Response:
        """An HTTP request to a step route: POST with a JSON body when `body` is given, else GET."""
        method = method or ("GET" if body is None else "POST")
        return self.http.request(method, path, json=body, headers=headers, params=query)

    def emit(self, topic: str, data: Any = None, *, id: str | None = None) -> dict[str, Any]:  # noqa: A002
        """Emit an event as `steppe emit` does; returns {id, traceId, deliveries, duplicate}."""
        r = self.http.post("/__steppe/emit", json={"topic": topic, "data": data, **({"id": id} if id else {})})
        if r.status_code != 202:
            raise RuntimeError(f"emit {topic!r} refused ({r.status_code}): {r.text}")
        return dict(r.json())

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until all work has settled: no delivery queued or running (a delayed delivery counts as
        queued) and no handler running in any runner (an API call or a cron tick too), seen twice in a row."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            view = self.http.get("/__steppe/runners").json()  # the queue's counts and each runner's invocations
            queue = view["queue"]
            busy = sum(runner["inFlight"] for runner in view["runners"].values())
            quiet = quiet + 1 if queue["ready"] == 0 and queue["leased"] == 0 and busy == 0 else 0
            if quiet >= 2:
                return
            time.sleep(0.03)
        raise TimeoutError(f"the host still had work after {timeout}s: queue {queue}, {busy} in flight")

    def emitted_events(self, topic: str | None = None, *, trace_id: str | None = None) -> list[dict[str, Any]]:
        """Events emitted so far, oldest first: {id, topic, data, traceId, emittedBy, deliveries, time}."""
        params = {k: v for k, v in (("topic", topic), ("traceId", trace_id)) if v}
        return list(self.http.get("/__steppe/emitted", params={**params, "limit": 2000}).json())

    def emitted_topics(self) -> list[str]:
        return [e["topic"] for e in self.emitted_events()]

    def clear_emitted(self) -> None:
        self.http.delete("/__steppe/emitted")

    def get_state(self, group: str, key: str | None = None) -> Any:
        """One value (None when absent), or with no key every value of the group."""
        if key is None:
            return self.http.get(f"/__steppe/state/{quote(group, safe='')}").json()["values"]
        r = self.http.get(f"/__steppe/state/{quote(group, safe='')}/{quote(key, safe='')}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()["value"]

    def get_stream(self, stream: str, group: str, id: str | None = None) -> Any:  # noqa: A002
        """One stream item (None when absent), or with no id every item of the group. To watch changes as
        they happen, connect `steppe.stream_client.StreamClient(tester.url)`."""
        where = f"/__steppe/streams/{quote(stream, safe='')}/{quote(group, safe='')}"
        if id is None:
            return self.http.get(where).json()["items"]
        r = self.http.get(f"{where}/{quote(id, safe='')}")
        if r.status_code == 404 and "no item" in r.text:
            return None
        r.raise_for_status()
        return r.json()["item"]

    def logs(self, *, step: str | None = None, trace_id: str | None = None,
             limit: int = 2000) -> list[dict[str, Any]]:
        """The host's log records: {time, level, msg, source, step?, traceId?, fields?}."""
        params: dict[str, Any] = {"limit": limit, **{k: v for k, v in (("step", step), ("traceId", trace_id)) if v}}
        return list(self.http.get("/__steppe/logs", params=params).json())

    def streams_url(self) -> str:
        """The WebSocket address for `steppe.stream_client.StreamClient` to watch streams."""
        return self.url


def host_fixture(root: str | Path, *, scope: Scope = "module", name: str = "tester",
                   env: dict[str, str] | None = None) -> Any:
    """A pytest fixture named `name`, starting one host for all tests of a module (or `scope`):

        tester = host_fixture(Path(__file__).parent.parent)

        def test_order(tester):
            assert tester.call_api("/orders", {"item": "tea"}).status_code == 200
    """
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def fixture() -> Any:
        with HostTester(root, env=env) as tester:
            yield tester
    return fixture
