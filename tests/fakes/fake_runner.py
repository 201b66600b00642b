"""A small misbehaving runner (like jupyter_client's fake kernels) to test the host's supervision.

A step file `*.step.fake` holds its config as JSON. The first argument picks the misbehaviour:
  ok          behave
  garbage     print a non-JSON line before every answer
  crash       exit(3) when invoked
  hang        never answer an invoke (but answer pings)
  deaf        answer nothing after the handshake and load (not even pings)
  exit-start  exit(1) before the handshake
  stray-ids   answer every invoke twice, the second time with an id nobody asked for
  longline    answer an invoke with one line longer than FAKE_LINE_BYTES (default 100000)
  longping    answer pings with one line longer than FAKE_LINE_BYTES (a line outside any invoke)
  slowcancel  never answer an invoke by itself; answer a cancel for it after FAKE_CANCEL_DELAY s (0.2)
"""

import json
import os
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
out = sys.stdout
if mode == "exit-start":
    sys.stderr.write("fake runner refusing to start\n")
    sys.exit(1)
configs: dict = {}
silent = False
long_bytes = int(os.environ.get("FAKE_LINE_BYTES", "100000"))


def send(msg: dict) -> None:
    if mode == "garbage":
        out.write("this is not JSON, just a stray print\n")
    out.write(json.dumps(msg) + "\n")
    out.flush()


for line in sys.stdin:
    msg = json.loads(line)
    method, rid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
    if method == "cancel" and mode == "slowcancel" and not silent:
        time.sleep(float(os.environ.get("FAKE_CANCEL_DELAY", "0.2")))
        send({"jsonrpc": "2.0", "id": params.get("id"),
              "error": {"code": -32002, "message": "invocation cancelled", "data": {"type": "Cancelled"}}})
        continue
    if silent or rid is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": rid, "result": {"protocolVersion": 1, "language": "fake",
                                                      "runnerVersion": "0", "pid": os.getpid()}})
    elif method == "load":
        with open(params["path"]) as f:
            config = json.load(f)
        send({"jsonrpc": "2.0", "id": rid, "result": {"config": config, "handler": True, "middleware": 0,
                                                      "canAccess": False}})
        silent = mode == "deaf"
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": rid, "result": "pong" + ("!" * long_bytes if mode == "longping" else "")})
    elif method == "shutdown":
        send({"jsonrpc": "2.0", "id": rid, "result": None})
        sys.exit(0)
    elif method == "invoke":
        if mode == "crash":
            sys.exit(3)
        if mode in ("hang", "slowcancel"):
            continue
        if mode == "longline":
            send({"jsonrpc": "2.0", "id": rid, "result": {"status": 200, "body": "x" * long_bytes}})
            continue
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": 200, "body": {"fake": True, "pid": os.getpid()}}})
        if mode == "stray-ids":
            send({"jsonrpc": "2.0", "id": 987654, "result": {"status": 200}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"no {method}"}})
