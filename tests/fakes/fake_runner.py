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
  fd1         write bytes without a newline to fd 1 before every answer (a handler's stray write)
  forkexit    on the first invoke, start a child that inherits every pipe and sleeps FAKE_CHILD_SECONDS (60),
              write its pid to FAKE_CHILD_PID_FILE, then exit(3) without answering
  forkstay    on the first invoke, start such a child too, and answer as usual
  crashloop   crash on the first invoke, then exit(1) before the handshake until FAKE_COUNTER_FILE counts
              FAKE_CRASHES (6) deaths in all; then behave
  wrongname   answer the handshake with language "notfake"
  oddload     answer the load of a file whose name holds "odd" with a string, not {config, handler}
  unkeepable  on invoke, call state.set with a number too large for a double (JSON, but not what the host reads),
              then answer with a body holding a lone surrogate (also not) and the call's error in `said`

It speaks on the pipe pair named in STEPPE_RPC_FDS when the host gives one (protocol 1.1), else on
stdin/stdout (protocol 1.0).
"""

import json
import os
import subprocess
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
if fds := os.environ.get("STEPPE_RPC_FDS"):
    fd_in, fd_out = (int(x) for x in fds.split(","))
    inp, out = os.fdopen(fd_in, "r"), os.fdopen(fd_out, "w")
else:
    inp, out = sys.stdin, sys.stdout
if mode == "exit-start":
    sys.stderr.write("fake runner refusing to start\n")
    sys.exit(1)


def deaths() -> int:
    """crashloop: how many times this runner has died so far (kept in a file across incarnations)."""
    path = os.environ["FAKE_COUNTER_FILE"]
    return int(open(path).read() or 0) if os.path.exists(path) else 0


def count_death() -> None:
    n = deaths() + 1
    with open(os.environ["FAKE_COUNTER_FILE"], "w") as f:
        f.write(str(n))


if mode == "crashloop" and 0 < deaths() < int(os.environ.get("FAKE_CRASHES", "6")):
    count_death()
    sys.stderr.write("fake runner crashing at start\n")
    sys.exit(1)
configs: dict = {}
silent = False
long_bytes = int(os.environ.get("FAKE_LINE_BYTES", "100000"))


def send(msg: dict) -> None:
    if mode == "garbage":
        out.write("this is not JSON, just a stray print\n")
    if mode == "fd1":
        os.write(1, b"stray bytes on fd 1 ")
    out.write(json.dumps(msg) + "\n")
    out.flush()


for line in inp:
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
        send({"jsonrpc": "2.0", "id": rid, "result": {"protocolVersion": 1,
                                                      "language": "notfake" if mode == "wrongname" else "fake",
                                                      "runnerVersion": "0", "pid": os.getpid()}})
    elif method == "load":
        if mode == "oddload" and "odd" in os.path.basename(params["path"]):
            send({"jsonrpc": "2.0", "id": rid, "result": "[object Object]"})  # e.g. Object.prototype.toJSON replaced
            continue
        try:
            with open(params["path"]) as f:
                config = json.load(f)
        except ValueError as e:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32001, "message": f"not JSON: {e}",
                                                         "data": {"type": "SyntaxError", "stack": ""}}})
            continue
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
        if mode == "crashloop" and deaths() == 0:
            count_death()
            sys.exit(3)
        if mode in ("forkexit", "forkstay") and not os.path.exists(os.environ["FAKE_CHILD_PID_FILE"]):
            child = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(float(sys.argv[1]))",
                                      os.environ.get("FAKE_CHILD_SECONDS", "60")], close_fds=False)
            with open(os.environ["FAKE_CHILD_PID_FILE"], "w") as f:
                f.write(str(child.pid))
            if mode == "forkexit":
                os._exit(3)
        if mode in ("hang", "slowcancel"):
            continue
        if mode == "unkeepable":
            call = '{"jsonrpc": "2.0", "id": "c1", "method": "state.set", "params": {"invocation": RID, ' \
                   '"group": "g", "key": "k", "value": BIG}}\n'
            out.write(call.replace("RID", json.dumps(rid)).replace("BIG", str(10 ** 400)))
            out.flush()
            while (reply := json.loads(inp.readline())).get("id") != "c1":
                pass  # a ping in between is not answered here: the host waits for it longer than this takes
            said = reply.get("error", {}).get("message", "no error")
            answer = '{"jsonrpc": "2.0", "id": RID, "result": {"status": 200, "body": "\\ud800", "said": SAID}}\n'
            out.write(answer.replace("RID", json.dumps(rid)).replace("SAID", json.dumps(said)))
            out.flush()
            continue
        if mode == "longline":
            send({"jsonrpc": "2.0", "id": rid, "result": {"status": 200, "body": "x" * long_bytes}})
            continue
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": 200, "body": {"fake": True, "pid": os.getpid()}}})
        if mode == "stray-ids":
            send({"jsonrpc": "2.0", "id": 987654, "result": {"status": 200}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"no {method}"}})
