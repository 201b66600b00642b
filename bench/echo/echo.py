"""Bare newline-JSON echo (S5 baseline): answer each request line with {"jsonrpc", "id", "result": "pong"}.
No framework: read a line, parse it, encode the answer, write it. Uses orjson when the interpreter has it,
as Steppe's Python runner does."""

import sys

# mypy: ignore-errors

try:
    import orjson

    loads, dumps = orjson.loads, orjson.dumps
except ImportError:
    import json

    loads = json.loads

    def dumps(obj):
        return json.dumps(obj, separators=(",", ":")).encode()


def main():
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        msg = loads(line)
        out.write(dumps({"jsonrpc": "2.0", "id": msg["id"], "result": "pong"}) + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
