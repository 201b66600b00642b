"""The front door answers API steps and the probes with FastAPI not imported; the full app (the admin API,
the OpenAPI document, JSON 404s and 405s) is built on the first request that needs it, and answers as
before once built. Whether FastAPI is in the host is read from outside: pydantic_core, its compiled core,
is mapped into the process only once imported."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import write_project

BUILT = "built the full app"
HELLO = {"steps/hello_step.py": """
    config = {"type": "api", "name": "Hello", "path": "/hello/:who", "method": "GET", "emits": []}

    async def handler(req, context):
        return {"status": 200, "body": {"hello": req["pathParams"]["who"]}}
"""}


def fastapi_loaded(pid: int) -> bool:
    maps = Path(f"/proc/{pid}/maps")
    if not maps.exists():
        pytest.skip("needs /proc to see what the host process has loaded")
    return "pydantic_core" in maps.read_text()


def test_steps_and_probes_are_served_before_fastapi_is_imported(tmp_path: Path, start_host) -> None:  # noqa: ANN001
    host = start_host(write_project(tmp_path, HELLO), mode="start", env={"STEPPE_LOG_LEVEL": "debug"})
    got = httpx.get(f"{host.url}/hello/ann", timeout=30)
    assert got.status_code == 200 and got.json() == {"hello": "ann"}
    assert httpx.get(f"{host.url}/__steppe/ready", timeout=5).status_code == 200
    assert httpx.head(f"{host.url}/__steppe/health", timeout=5).status_code == 200
    assert not fastapi_loaded(host.proc.pid) and BUILT not in host.logs()

    # the first request the front door leaves to the full app builds it, and is answered by it
    missing = httpx.get(f"{host.url}/nope", timeout=30)
    assert missing.status_code == 404
    assert {k: v for k, v in missing.json().items() if k != "traceId"} == {"error": "Not Found", "method": "GET",
                                                                         "path": "/nope"}
    assert fastapi_loaded(host.proc.pid) and BUILT in host.logs()
    document = httpx.get(f"{host.url}/openapi.json", timeout=5).json()
    assert "/hello/{who}" in document["paths"]
    wrong = httpx.post(f"{host.url}/__steppe/health", timeout=5)  # a probe's route, another method: the router's
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
    assert host.admin_get("/__steppe/steps", timeout=5).json()["steps"][0]["name"] == "Hello"
    assert httpx.get(f"{host.url}/__steppe/steps", timeout=5).status_code == 401  # the guard is in the full app
    assert httpx.get(f"{host.url}/hello/bo", timeout=5).json() == {"hello": "bo"}  # steps: still the front door


def test_requests_arriving_during_the_build_wait_for_it(tmp_path: Path, start_host) -> None:  # noqa: ANN001
    host = start_host(write_project(tmp_path, HELLO), mode="start", env={"STEPPE_LOG_LEVEL": "debug"})

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=host.url, timeout=30) as http:
            return await asyncio.gather(*(http.get(f"/missing/{i}") for i in range(8)),
                                        *(http.get(f"/hello/{i}") for i in range(4)))

    answers = asyncio.run(burst())
    assert [r.status_code for r in answers] == [404] * 8 + [200] * 4
    assert [r.json()["path"] for r in answers[:8]] == [f"/missing/{i}" for i in range(8)]
    assert host.logs().count(BUILT) == 1  # one build, however many requests waited for it


def test_header_limit_answers_431_on_the_lean_path_too(tmp_path: Path, start_host) -> None:  # noqa: ANN001
    host = start_host(write_project(tmp_path, HELLO), mode="start", env={"STEPPE_MAX_HEADERS": "2048"})
    big = {"x-filler": "a" * 4096}
    for path in ("/hello/ann", "/__steppe/health"):  # both are the front door's below the limit
        got = httpx.get(f"{host.url}{path}", headers=big, timeout=30)
        assert got.status_code == 431 and got.json()["limit"] == 2048, path


def test_dev_mode_builds_the_full_app_once_listening(tmp_path: Path, start_host) -> None:  # noqa: ANN001
    host = start_host(write_project(tmp_path, HELLO), env={"STEPPE_LOG_LEVEL": "debug"})  # dev: Workbench on
    host.wait_log(BUILT, timeout=30)  # no request asked for it
    assert fastapi_loaded(host.proc.pid)
    assert httpx.get(f"{host.url}/hello/ann", timeout=30).json() == {"hello": "ann"}


def test_the_front_door_and_routes_import_no_fastapi() -> None:
    """What Host.start imports for serving (the routes, the front door, the HTTP server) leaves FastAPI and
    pydantic to the full app's build, and psutil to the admin view of the runners."""
    code = ("import sys, steppe.serve, steppe.app, steppe.web.routes, steppe.http_server, steppe.web.http_protocol; "
            "print(' '.join(m for m in ('fastapi', 'pydantic', 'pydantic_core', 'psutil') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
