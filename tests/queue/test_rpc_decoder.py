"""The JSON-RPC decoder (steppe.rpc.RpcConnection) fed real bytes, chunk by chunk, as a transport feeds it:
whatever a runner writes, run() returns a reason instead of raising, every line is classified (answer, request,
notification, garbage) exactly as the protocol says, every pending request is settled when the
connection ends, and chunk boundaries make no difference."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steppe import wire
from steppe.rpc import ConnectionLost, Refusal, RpcConnection, RpcError

EOF_REASON = "runner closed its stdout"
PROFILE = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


class Sink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def messages(self) -> list[dict[str, Any]]:
        data = b"".join(self.chunks)
        assert data == b"" or data.endswith(b"\n")
        return [orjson.loads(line) for line in data.splitlines()]


@dataclass
class Peer:
    """One RpcConnection with recording callbacks."""

    limit: int = 2**16
    answer: Callable[[str, dict[str, Any]], Any] | None = None  # how on_request answers (may raise)
    sink: Sink = field(default_factory=Sink)
    garbage: list[tuple[bytes, str]] = field(default_factory=list)
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    conn: RpcConnection = field(init=False)

    def __post_init__(self) -> None:
        self.conn = RpcConnection(self.sink, on_request=self.on_request,
                                  on_notification=lambda m, p: self.notes.append((m, p)),
                                  on_garbage=lambda line, why: self.garbage.append((line, why)), limit=self.limit)

    def on_request(self, method: str, params: dict[str, Any]) -> Any:
        self.requests.append((method, params))  # recorded at dispatch, in arrival order

        async def serve() -> Any:
            await asyncio.sleep(0)
            return self.answer(method, params) if self.answer else {"echo": method}

        return serve()

    async def feed(self, data: bytes, cuts: list[int] | None = None, eof: bool = True) -> None:
        """Feed `data`, cut into chunks at the given sizes (the rest in one piece), yielding to the loop
        between chunks so run() sees partial lines."""
        pos = 0
        for size in cuts or []:
            if pos >= len(data):
                break
            self.conn.feed_data(data[pos:pos + size])
            pos += size
            await asyncio.sleep(0)
        if pos < len(data):
            self.conn.feed_data(data[pos:])
        if eof:
            self.conn.feed_eof()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- strategies

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.text(max_size=8),
                        st.floats(allow_nan=False, allow_infinity=False))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=6)
ids = st.one_of(st.integers(0, 6), st.booleans(), st.sampled_from([1.0, 2.5]), st.text(max_size=3), st.none(),
                st.lists(st.integers(0, 3), max_size=2),
                st.dictionaries(st.text(max_size=2), st.integers(0, 9), max_size=1))
codes = st.one_of(st.integers(-40000, 40000), st.none(), st.text(max_size=4), st.floats(-1e6, 1e6),
                  st.lists(st.integers(0, 9), max_size=1), st.booleans())
errors = st.one_of(
    st.fixed_dictionaries({}, optional={"code": codes, "message": st.one_of(st.text(max_size=10), json_value),
                                        "data": json_value}),
    json_value)
methods = st.one_of(st.sampled_from(["ping", "emit", "state.get", "log", "invoke"]), st.text(max_size=6),
                    st.integers(-100, 100), st.none())
json_message = st.fixed_dictionaries({}, optional={
    "jsonrpc": st.sampled_from(["2.0", "1.0"]), "id": ids, "method": methods,
    "params": json_value, "result": json_value, "error": errors})


def no_newline(b: bytes) -> bytes:
    return b.replace(b"\n", b"")


lines = st.one_of(
    st.binary(max_size=60).map(no_newline),
    st.text(max_size=40).map(lambda s: no_newline(s.encode())),
    json_value.map(orjson.dumps),
    json_message.map(orjson.dumps),
    json_message.map(orjson.dumps),
    json_message.map(orjson.dumps),
    json_message.map(lambda m: b"  " + orjson.dumps(m, option=orjson.OPT_INDENT_2).replace(b"\n", b" ") + b"\r"),
)
cuts = st.lists(st.integers(1, 40), max_size=30)


# --- the reference: what each line must do, straight from the protocol

@dataclass
class Expected:
    garbage: list[tuple[bytes, str]] = field(default_factory=list)
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pings: list[Any] = field(default_factory=list)
    settled: dict[int, tuple[str, Any]] = field(default_factory=dict)  # our request id -> ("result"|"error", x)


def expect(raw_lines: list[bytes], pending: list[int]) -> Expected:
    out, open_ids = Expected(), set(pending)
    for line in raw_lines:
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError:
            if line.strip():
                out.garbage.append((line, "not JSON"))
            continue
        if not isinstance(msg, dict):
            out.garbage.append((line, "not a JSON object"))
            continue
        method = msg.get("method")
        params: dict[str, Any] = msg["params"] if isinstance(msg.get("params"), dict) else {}
        if method is None:
            rid = msg.get("id")
            if isinstance(rid, Hashable) and rid in open_ids:
                open_ids.discard(rid)  # type: ignore[arg-type]
                key = next(i for i in pending if i == rid)
                err = msg.get("error")
                out.settled[key] = ("error", err) if err is not None else ("result", msg.get("result"))
            else:
                out.garbage.append((line, "answer to an unknown request id"))
        elif "id" not in msg:
            out.notes.append((str(method), params))
        elif method == "ping":
            out.pings.append(msg["id"])
        else:
            out.requests.append((str(method), params))
    return out


def check_error(exc: BaseException, err: Any) -> None:
    """An error answer becomes an RpcError carrying what the peer sent, as far as it is well-formed."""
    assert isinstance(exc, RpcError) and not isinstance(exc, ConnectionLost), repr(exc)
    assert isinstance(exc.code, int) and isinstance(exc.message, str) and isinstance(exc.data, dict)
    if isinstance(err, dict):
        code = err.get("code", wire.INTERNAL_ERROR)
        if type(code) is int:
            assert exc.code == code
        if isinstance(err.get("message"), str):
            assert exc.message == err["message"]
        if isinstance(err.get("data"), dict):
            assert exc.data == err["data"]
    assert isinstance(exc.type, str) and isinstance(exc.stack, str)


async def decode(raw_lines: list[bytes], chunk_cuts: list[int] | None, n_pending: int = 6,
                 ) -> tuple[Peer, str | BaseException, list[asyncio.Future[Any]]]:
    peer = Peer()
    futures = [peer.conn.request("invoke", {"n": i})[1] for i in range(n_pending)]
    task = asyncio.ensure_future(peer.conn.run())
    await peer.feed(b"".join(line + b"\n" for line in raw_lines), chunk_cuts)
    try:
        reason: str | BaseException = await asyncio.wait_for(task, 10)
    except Exception as e:  # noqa: BLE001 - reported by the caller as a failure
        reason = e
    return peer, reason, futures


@PROFILE
@given(raw_lines=st.lists(lines, max_size=25), chunk_cuts=st.one_of(st.none(), cuts))
def test_arbitrary_lines_never_raise_and_are_classified(raw_lines: list[bytes], chunk_cuts: list[int] | None) -> None:
    async def main() -> None:
        peer, reason, futures = await decode(raw_lines, chunk_cuts)
        assert reason == EOF_REASON, f"run() ended with {reason!r}"
        want = expect(raw_lines, list(range(1, len(futures) + 1)))
        assert [(line.rstrip(b"\n"), why) for line, why in peer.garbage] == want.garbage
        assert peer.notes == want.notes
        assert peer.requests == want.requests
        for rid, fut in enumerate(futures, start=1):
            assert fut.done(), f"request {rid} still pending after the connection ended"
            if rid in want.settled:
                kind, value = want.settled[rid]
                if kind == "result":
                    assert fut.result() == value
                else:
                    check_error(fut.exception(), value)  # type: ignore[arg-type]
            else:
                lost = fut.exception()
                assert isinstance(lost, ConnectionLost) and lost.message == EOF_REASON
        assert peer.conn.closed_reason == EOF_REASON

    run(main())


@PROFILE
@given(raw_lines=st.lists(lines, max_size=15), chunk_cuts=cuts)
def test_chunk_boundaries_make_no_difference(raw_lines: list[bytes], chunk_cuts: list[int]) -> None:
    def outcome(peer: Peer, reason: Any, futures: list[asyncio.Future[Any]]) -> Any:
        settled = [("result", f.result()) if f.done() and not f.exception() else
                   ("error", type(f.exception()).__name__, getattr(f.exception(), "code", None),
                    getattr(f.exception(), "message", None)) if f.done() else "pending" for f in futures]
        return reason if isinstance(reason, str) else repr(reason), peer.garbage, peer.notes, peer.requests, settled

    async def main() -> tuple[Any, Any]:
        whole = outcome(*await decode(raw_lines, None))
        chunked = outcome(*await decode(raw_lines, chunk_cuts))
        bytewise = outcome(*await decode(raw_lines, [1] * 400))
        return whole, (chunked, bytewise)

    whole, (chunked, bytewise) = run(main())
    assert chunked == whole
    assert bytewise == whole


answers = st.one_of(
    st.tuples(st.just("result"), json_value),
    st.tuples(st.just("error"), st.fixed_dictionaries(
        {"code": st.integers(-32768, 32767), "message": st.text(max_size=20)},
        optional={"data": st.fixed_dictionaries({}, optional={"type": st.text(max_size=8),
                                                              "stack": st.text(max_size=30)})})))


@PROFILE
@given(plan=st.lists(answers, min_size=1, max_size=12).flatmap(
    lambda a: st.tuples(st.just(a), st.permutations(range(len(a))))), chunk_cuts=cuts)
def test_answers_resolve_the_matching_requests(plan: tuple[list[tuple[str, Any]], list[int]],
                                               chunk_cuts: list[int]) -> None:
    replies, order = plan

    async def main() -> None:
        peer = Peer()
        sent = [peer.conn.request(f"m{i}", {"i": i}) for i in range(len(replies))]
        await asyncio.sleep(0)  # requests made in one loop turn are written by the end of it
        assert [m["id"] for m in peer.sink.messages()] == [rid for rid, _ in sent]
        assert peer.sink.messages() == [{"jsonrpc": "2.0", "id": rid, "method": f"m{i}", "params": {"i": i}}
                                        for i, (rid, _) in enumerate(sent)]
        lines = []
        for i in order:  # answers arrive in any order
            kind, value = replies[i]
            lines.append(orjson.dumps({"jsonrpc": "2.0", "id": sent[i][0], kind: value}))
        lines.append(orjson.dumps({"jsonrpc": "2.0", "id": sent[order[0]][0], "result": "late duplicate"}))
        task = asyncio.ensure_future(peer.conn.run())
        await peer.feed(b"".join(x + b"\n" for x in lines), chunk_cuts)
        assert await asyncio.wait_for(task, 10) == EOF_REASON
        for i, (_, fut) in enumerate(sent):
            kind, value = replies[i]
            if kind == "result":
                assert fut.result() == value
            else:
                exc = fut.exception()
                assert isinstance(exc, RpcError) and not isinstance(exc, ConnectionLost)
                assert (exc.code, exc.message, exc.data) == (value["code"], value["message"], value.get("data", {}))
                assert exc.type == (value.get("data", {}).get("type") or "Error")
                assert exc.stack == (value.get("data", {}).get("stack") or "")
        # an answer to an id already answered is garbage, not a crash
        assert [why for _, why in peer.garbage] == ["answer to an unknown request id"]

    run(main())


request_kinds = st.sampled_from(["ok", "refuse", "raise", "ping", "unencodable"])


@PROFILE
@given(kinds=st.lists(request_kinds, min_size=1, max_size=15), chunk_cuts=cuts,
       rids=st.lists(st.one_of(st.integers(-1000, 10**6), st.text(min_size=1, max_size=6)), min_size=15,
                     max_size=15, unique=True))
def test_peer_requests_get_exactly_one_answer_each(kinds: list[str], chunk_cuts: list[int], rids: list[Any]) -> None:
    def answer(method: str, params: dict[str, Any]) -> Any:
        kind = params["kind"]
        if kind == "refuse":
            raise Refusal("UndeclaredTopic", f"topic {params['n']} is not declared")
        if kind == "raise":
            raise KeyError(f"bug {params['n']}")
        if kind == "unencodable":
            return {"value": object()}
        return {"n": params["n"], "method": method}

    async def main() -> None:
        peer = Peer(answer=answer)
        lines = []
        for n, (kind, rid) in enumerate(zip(kinds, rids, strict=False)):
            method = "ping" if kind == "ping" else "state.get"
            params = {"kind": kind, "n": n}
            lines.append(orjson.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
        task = asyncio.ensure_future(peer.conn.run())
        await peer.feed(b"".join(x + b"\n" for x in lines), chunk_cuts, eof=False)
        for _ in range(1000):  # answers come from tasks: give them the loop (bounded)
            if len(peer.sink.messages()) >= len(kinds):
                break
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)  # and a little more, so a second answer would show up
        peer.conn.feed_eof()
        assert await asyncio.wait_for(task, 10) == EOF_REASON
        got = peer.sink.messages()
        by_id: dict[Any, list[dict[str, Any]]] = {}
        for m in got:
            assert m["jsonrpc"] == "2.0" and ("result" in m) != ("error" in m)
            by_id.setdefault(m["id"], []).append(m)
        assert sorted(map(repr, by_id)) == sorted(repr(r) for r in rids[:len(kinds)])
        for n, (kind, rid) in enumerate(zip(kinds, rids, strict=False)):
            [m] = by_id[rid]  # exactly one answer
            if kind == "ok":
                assert m["result"] == {"n": n, "method": "state.get"}
            elif kind == "ping":
                assert m["result"] == "pong"
            elif kind == "refuse":
                assert m["error"] == {"code": wire.HOST_REFUSED, "message": f"topic {n} is not declared",
                                      "data": {"type": "UndeclaredTopic"}}
            elif kind == "raise":
                assert m["error"]["code"] == wire.INTERNAL_ERROR and m["error"]["data"] == {"type": "KeyError"}
                assert m["error"]["message"].startswith("host error:") and f"bug {n}" in m["error"]["message"]
            elif kind == "unencodable":
                assert m["error"]["code"] == wire.INTERNAL_ERROR
                assert m["error"]["message"].startswith("unencodable result")
        assert [p["n"] for _, p in peer.requests] == [n for n, k in enumerate(kinds) if k != "ping"]  # in order
        assert peer.garbage == [] and peer.notes == []

    run(main())


@PROFILE
@given(notes=st.lists(st.tuples(st.text(min_size=1, max_size=10), json_value), max_size=15), chunk_cuts=cuts)
def test_notifications_reach_on_notification(notes: list[tuple[str, Any]], chunk_cuts: list[int]) -> None:
    async def main() -> None:
        peer = Peer()
        data = b"".join(orjson.dumps({"jsonrpc": "2.0", "method": m, "params": p}) + b"\n" for m, p in notes)
        task = asyncio.ensure_future(peer.conn.run())
        await peer.feed(data, chunk_cuts)
        assert await asyncio.wait_for(task, 10) == EOF_REASON
        assert peer.notes == [(m, p if isinstance(p, dict) else {}) for m, p in notes]
        assert peer.garbage == [] and peer.requests == [] and peer.sink.chunks == []  # notifications get no answer

    run(main())


# --- specific cases (each also reachable by the generated tests above)

def _one_bad_answer(answer: dict[str, Any]) -> None:
    """A malformed answer to a pending request must settle that request and leave the connection up: the
    notification after it still arrives, and run() ends at EOF with the EOF reason."""
    async def main() -> None:
        peer = Peer()
        _, fut = peer.conn.request("invoke", {})
        task = asyncio.ensure_future(peer.conn.run())
        await peer.feed(orjson.dumps(answer) + b"\n" + b'{"jsonrpc":"2.0","method":"after","params":{}}\n')
        try:
            reason = await asyncio.wait_for(task, 5)
        except Exception as e:
            pytest.fail(f"run() raised {e!r} on {answer}")
        assert reason == EOF_REASON, f"the connection ended with {reason!r} on {answer}"
        assert peer.notes == [("after", {})]
        assert fut.done(), "the request was taken off the pending table but never settled"
        check_error(fut.exception(), answer["error"])  # type: ignore[arg-type]

    run(main())


@pytest.mark.parametrize("answer", [
    {"jsonrpc": "2.0", "id": 1, "error": {"code": "oops", "message": "m"}},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": None, "message": "m"}},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": [1], "message": "m"}},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "m", "data": "not an object"}},
    {"jsonrpc": "2.0", "id": 1, "error": "just a string"},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": 1.5}},
], ids=["code-text", "code-null", "code-list", "data-text", "error-text", "code-float"])
def test_malformed_error_answer_settles_the_request(answer: dict[str, Any]) -> None:
    _one_bad_answer(answer)


@pytest.mark.parametrize("rid", [[1], {"a": 1}], ids=["list", "object"])
def test_unhashable_answer_id_is_garbage(rid: Any) -> None:
    async def main() -> None:
        peer = Peer()
        _, fut = peer.conn.request("invoke", {})
        task = asyncio.ensure_future(peer.conn.run())
        await peer.feed(orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": 1}) + b"\n")
        try:
            reason = await asyncio.wait_for(task, 5)
        except Exception as e:
            pytest.fail(f"run() raised {e!r} on an answer with id {rid!r}")
        assert reason == EOF_REASON
        assert [why for _, why in peer.garbage] == ["answer to an unknown request id"]
        assert isinstance(fut.exception(), ConnectionLost)

    run(main())


def test_non_json_and_non_object_lines_are_garbage() -> None:
    async def main() -> None:
        peer = Peer()
        data = b'not json\n\n   \n[1,2]\n"text"\n42\n{"jsonrpc":"2.0","id":99,"result":1}\n\xff\xfe\n{"a":\n'
        task = asyncio.ensure_future(peer.conn.run())
        await peer.feed(data)
        assert await task == EOF_REASON
        assert [(line.rstrip(b"\n"), why) for line, why in peer.garbage] == [
            (b"not json", "not JSON"), (b"[1,2]", "not a JSON object"), (b'"text"', "not a JSON object"),
            (b"42", "not a JSON object"), (b'{"jsonrpc":"2.0","id":99,"result":1}', "answer to an unknown request id"),
            (b"\xff\xfe", "not JSON"), (b'{"a":', "not JSON")]

    run(main())


def test_unfinished_last_line_at_eof_is_still_read() -> None:
    async def main() -> None:
        peer = Peer()
        task = asyncio.ensure_future(peer.conn.run())
        await peer.feed(b'{"jsonrpc":"2.0","method":"last","params":{"x":1}}')  # no newline, then EOF
        assert await task == EOF_REASON
        assert peer.notes == [("last", {"x": 1})]

    run(main())


# --- the line limit

@PROFILE
@given(limit=st.integers(32, 300), extra=st.integers(1, 500), newline=st.booleans(), chunk_cuts=cuts)
def test_line_over_the_limit_ends_run_and_fails_pending(limit: int, extra: int, newline: bool,
                                                        chunk_cuts: list[int]) -> None:
    async def main() -> None:
        peer = Peer(limit=limit)
        futures = [peer.conn.request("invoke", {"n": i})[1] for i in range(3)]
        before = b'{"method":"before"}\n'
        huge = b'{"method":"huge","params":{"pad":"' + b"x" * (limit + extra) + b'"}}'
        task = asyncio.ensure_future(peer.conn.run())
        # no EOF: the over-long line alone must end run(), whether or not its newline ever comes
        await peer.feed(before + huge + (b"\n" if newline else b""), chunk_cuts, eof=False)
        reason = await asyncio.wait_for(task, 5)
        assert f"{limit}-byte limit" in reason, reason
        assert peer.notes == [("before", {})]  # what came before the long line was decoded
        for fut in futures:
            exc = fut.exception()
            assert isinstance(exc, ConnectionLost) and exc.message == reason and exc.code == wire.INTERNAL_ERROR
            assert exc.type == "ConnectionLost"
        assert peer.conn.closed_reason == reason
        # after the end, requests fail at once and nothing more is written
        written = len(peer.sink.chunks)
        _, late = peer.conn.request("invoke", {})
        assert isinstance(late.exception(), ConnectionLost)
        peer.conn.notify("log", {})
        with pytest.raises(ConnectionLost):
            await peer.conn.call("invoke", {}, timeout=1)
        assert len(peer.sink.chunks) == written

    run(main())


@pytest.mark.parametrize("limit", [64, 1000])
def test_line_of_exactly_the_limit_is_accepted(limit: int) -> None:
    async def main() -> None:
        peer = Peer(limit=limit)
        head = b'{"method":"fits","params":{"pad":"'
        tail = b'"}}'
        line = head + b"x" * (limit - len(head) - len(tail)) + tail
        assert len(line) == limit
        task = asyncio.ensure_future(peer.conn.run())
        await peer.feed(line + b"\n" + line[:-3] + b'x"}}\n')  # the next one is a byte over
        reason = await asyncio.wait_for(task, 5)
        assert peer.notes == [("fits", {"pad": "x" * (limit - len(head) - len(tail))})]
        assert f"{limit}-byte limit" in reason

    run(main())


def test_close_fails_pending_and_call_timeout_forgets() -> None:
    async def main() -> None:
        peer = Peer()
        with pytest.raises(TimeoutError):
            await peer.conn.call("invoke", {}, timeout=0.05)
        # the timed-out request is forgotten: its late answer is garbage
        task = asyncio.ensure_future(peer.conn.run())
        peer.conn.feed_data(b'{"jsonrpc":"2.0","id":1,"result":"late"}\n')
        await asyncio.sleep(0.01)
        assert [why for _, why in peer.garbage] == ["answer to an unknown request id"]
        _, fut = peer.conn.request("invoke", {})
        peer.conn.close("runner killed")
        assert isinstance(fut.exception(), ConnectionLost) and fut.exception().message == "runner killed"
        peer.conn.feed_eof()
        await task
        assert peer.conn.closed_reason == "runner killed"  # the first reason is kept

    run(main())


def test_request_ids_are_unique_and_increasing() -> None:
    async def main() -> None:
        peer = Peer()
        sent = [peer.conn.request("m", {}) for _ in range(50)]
        await asyncio.sleep(0)  # requests made in one loop turn are written by the end of it
        assert [rid for rid, _ in sent] == list(itertools.islice(itertools.count(1), 50))
        assert [m["id"] for m in peer.sink.messages()] == list(range(1, 51))
        peer.conn.close("done")
        assert all(isinstance(fut.exception(), ConnectionLost) for _, fut in sent)

    run(main())
