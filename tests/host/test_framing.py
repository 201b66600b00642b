"""The protocol pipe's framing (steppe.framing): what leaves in how many writes, and how chunks become lines.
RpcConnection's own decoding through it is tested in tests/queue/test_rpc_decoder.py."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steppe.framing import LineSplitter, LineTooLong, TurnWriter


class Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def test_first_write_of_a_turn_goes_out_at_once_the_rest_together_at_its_end() -> None:
    async def main() -> None:
        sink = Sink()
        out = TurnWriter(sink, asyncio.get_running_loop())
        out.write(b"a\n")
        assert sink.writes == [b"a\n"]  # an idle connection: no added latency
        out.write(b"b\n")
        out.write(b"c\n")
        assert sink.writes == [b"a\n"]
        await asyncio.sleep(0)
        assert sink.writes == [b"a\n", b"b\nc\n"]
        out.write(b"d\n")  # a new turn: at once again
        assert sink.writes == [b"a\n", b"b\nc\n", b"d\n"]
        await asyncio.sleep(0)
        assert sink.writes == [b"a\n", b"b\nc\n", b"d\n"]  # nothing held, no empty write

    asyncio.run(main())


def test_a_long_burst_leaves_in_pieces_of_flush_at_bytes_in_order() -> None:
    async def main() -> None:
        sink = Sink()
        out = TurnWriter(sink, asyncio.get_running_loop(), flush_at=100)
        lines = [b"%03d456789\n" % i for i in range(50)]  # 10 bytes each
        for line in lines:
            out.write(line)
        # the first alone, then one write each time 100 bytes are held: the peer starts early
        assert [len(w) for w in sink.writes] == [10] + [100] * 4
        await asyncio.sleep(0)
        assert b"".join(sink.writes) == b"".join(lines)
        assert len(sink.writes) == 6

    asyncio.run(main())


@settings(max_examples=200, deadline=None, database=None)
@given(lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=20),
       cuts=st.lists(st.integers(1, 30), max_size=20), limit=st.integers(1, 14))
def test_lines_come_out_whole_whatever_the_chunks(lines: list[bytes], cuts: list[int], limit: int) -> None:
    data = b"".join(line + b"\n" for line in lines)
    got: list[bytes] = []
    splitter = LineSplitter(got.append, limit)
    pos, too_long = 0, False
    try:
        for size in [*cuts, len(data)]:
            splitter.feed(data[pos:pos + size])
            pos += size
        splitter.finish()
    except LineTooLong:
        too_long = True
    # the reference: lines in order, empty ones skipped, everything before the first over-long line
    want: list[bytes] = []
    for line in lines:
        if len(line) > limit:
            break
        if line:
            want.append(line)
    assert got == want
    assert too_long == any(len(line) > limit for line in lines)


def test_an_unfinished_line_over_the_limit_is_refused_before_its_newline() -> None:
    got: list[bytes] = []
    splitter = LineSplitter(got.append, 10)
    splitter.feed(b"ok\n0123456789")  # exactly the limit, still open: fine
    with pytest.raises(LineTooLong):
        splitter.feed(b"x")
    assert got == [b"ok"]


def test_the_unfinished_last_line_is_a_message_at_eof() -> None:
    got: list[bytes] = []
    splitter = LineSplitter(got.append, 100)
    splitter.feed(b'{"a":1}\n{"b"')
    splitter.feed(b":2}")
    assert got == [b'{"a":1}']
    splitter.finish()
    assert got == [b'{"a":1}', b'{"b":2}']
