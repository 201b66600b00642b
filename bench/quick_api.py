"""Quick API round-trip check (issue 2): requests/s of the same tiny handler as a Steppe API step in each
language vs raw Starlette on uvicorn (one worker), measured in one run with wrk on loopback.

    .venv/bin/python bench/quick_api.py [--seconds 5] [--connections 32]

wrk runs pinned to CPU 1 (taskset) where available; the server gets the rest. The full suite is issue 5.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
RAW_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def hello(request):
    body = await request.json()
    return JSONResponse({"hello": body["name"]})

app = Starlette(routes=[Route("/hello", hello, methods=["POST"])])
'''
STEPS = {
    "python": ("steps/hello_step.py", '''
        config = {"type": "api", "name": "HelloPy", "path": "/py", "method": "POST", "emits": []}
        async def handler(req, context):
            return {"status": 200, "body": {"hello": req["body"]["name"]}}
    '''),
    "js": ("steps/hello.step.js", '''
        exports.config = { type: 'api', name: 'HelloJs', path: '/js', method: 'POST', emits: [] }
        exports.handler = async (req) => ({ status: 200, body: { hello: req.body.name } })
    '''),
    "ts": ("steps/hello_ts.step.ts", '''
        export const config = { type: 'api', name: 'HelloTs', path: '/ts', method: 'POST', emits: [] }
        export const handler = async (req: { body: { name: string } }) => ({ status: 200, body: { hello: req.body.name } })
    '''),
    "ruby": ("steps/hello_step.rb", '''
        def config
          { type: 'api', name: 'HelloRb', path: '/rb', method: 'POST', emits: [] }
        end
        def handler(req, context)
          { status: 200, body: { hello: req.body['name'] } }
        end
    '''),
}
LUA = 'wrk.method = "POST"\nwrk.body = \'{"name":"ada"}\'\nwrk.headers["Content-Type"] = "application/json"\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, seconds: int, connections: int, script: str) -> tuple[float, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")  # type: ignore[union-attr]
    return rps, p99


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="steppe-bench-"))
    (work / "raw_app.py").write_text(RAW_APP)
    (work / "post.lua").write_text(LUA)
    for rel, code in STEPS.values():
        (work / "project" / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / "project" / rel).write_text(textwrap.dedent(code).lstrip())
    procs = []
    try:
        raw_port, steppe_port = free_port(), free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "uvicorn", "raw_app:app", "--port", str(raw_port),
                                       "--log-level", "warning"], cwd=work))
        procs.append(subprocess.Popen([sys.executable, "-m", "steppe.cli", "start", "--host", "127.0.0.1",
                                       "--port", str(steppe_port), "--root", str(work / "project")],
                                      env={**os.environ, "STEPPE_LOG_LEVEL": "error", "STEPPE_STATE": "memory"}))
        wait(f"http://127.0.0.1:{raw_port}/")
        wait(f"http://127.0.0.1:{steppe_port}/__steppe/health")
        script = str(work / "post.lua")
        wrk(f"http://127.0.0.1:{raw_port}/hello", 1, args.connections, script)  # warm-up
        base, base_p99 = wrk(f"http://127.0.0.1:{raw_port}/hello", args.seconds, args.connections, script)
        print(f"| scenario | req/s | p99 ms | ratio to raw Starlette |\n|---|---|---|---|")
        print(f"| raw Starlette (uvicorn, 1 worker) | {base:,.0f} | {base_p99:.2f} | 1.00 |")
        for lang, path in (("python", "/py"), ("js", "/js"), ("ts", "/ts"), ("ruby", "/rb")):
            url = f"http://127.0.0.1:{steppe_port}{path}"
            wrk(url, 1, args.connections, script)
            rps, p99 = wrk(url, args.seconds, args.connections, script)
            print(f"| Steppe {lang} API step | {rps:,.0f} | {p99:.2f} | {rps / base:.2f} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
