"""The dead-letter store over HTTP: list, show, replay, drop (by id, by step, or all)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..queue import Queue
from .api import BodyError, json_response, read_body
from .limits import json_too_deep

MAX_SELECTION = 1024 * 1024  # bytes of a replay/drop selection body


MAX_ID = 2**63 - 1  # SQLite's largest integer: larger ids cannot name a dead letter


def valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


class DeadLetterId(Convertor[int]):
    """Starlette's `int` convertor, except that digits past any row id read as one past MAX_ID (answered
    400): int() refuses over 4,300 digits, which made such a path a 500."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        return int(value) if len(value) <= 19 else MAX_ID + 1

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("dead_letter_id", DeadLetterId())


async def select_ids(queue: Queue, body: dict[str, Any]) -> list[int]:
    """`{"ids": [..]}`, `{"step": name}` or `{"all": true}`: the dead letters an operation applies to."""
    if body.get("all") is True:
        return [d.id for d in await queue.dead()]
    if isinstance(body.get("step"), str):
        return [d.id for d in await queue.dead(step=body["step"])]
    ids = body.get("ids")
    if isinstance(ids, list) and all(valid_id(i) for i in ids):
        return [d.id for d in await queue.dead(ids=ids)]
    raise ValueError(f'expected {{"ids": [int, ...]}} (0 to {MAX_ID}), {{"step": "Name"}} or {{"all": true}}')


def dlq_routes(queue: Queue, wake: Callable[[], None]) -> list[Route]:
    async def listing(request: Request) -> Response:
        letters = await queue.dead(step=request.query_params.get("step"))
        return json_response(200, [d.as_dict() for d in letters])

    async def show(request: Request) -> Response:
        if not valid_id(dead_id := request.path_params["id"]):
            return json_response(400, {"error": f"a dead-letter id is an integer from 0 to {MAX_ID}",
                                       "id": str(dead_id)})
        letters = await queue.dead(ids=[dead_id])
        if not letters:
            return json_response(404, {"error": "Not Found", "id": request.path_params["id"]})
        return json_response(200, letters[0].as_dict())

    def operation(apply: Callable[[list[int]], Any], verb: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                raw = await read_body(request, MAX_SELECTION)
                if json_too_deep(raw, 32):
                    raise ValueError("the selection is nested too deeply")
                body = orjson.loads(raw or b"{}")
                ids = await select_ids(queue, body if isinstance(body, dict) else {})
            except BodyError as e:
                return json_response(e.status, e.payload)
            except (orjson.JSONDecodeError, ValueError) as e:
                return json_response(400, {"error": str(e)})
            count = await apply(ids)
            if verb == "replayed":
                wake()
            return json_response(200, {verb: count, "ids": ids})

        return endpoint

    return [Route("/__steppe/dlq", listing), Route("/__steppe/dlq/{id:dead_letter_id}", show),
            Route("/__steppe/dlq/replay", operation(queue.replay, "replayed"), methods=["POST"]),
            Route("/__steppe/dlq/drop", operation(queue.drop, "dropped"), methods=["POST"])]
