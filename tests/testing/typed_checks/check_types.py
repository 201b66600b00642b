# Checked with `mypy --strict --warn-unused-ignores` against the generated steppe_types.py: the correct
# uses pass, and each `type: ignore[...]` line must be an error (else: unused ignore).
from typing import Literal

from steppe_types import (
    ApiResponse,
    MakeInvoiceContext,
    MakeInvoiceHandler,
    MakeInvoiceInput,
    ShapesContext,
    ShapesHandler,
    ShapesInput,
    ShapesInputShape1,
    ShapesInputShape2,
    SubmitShapeContext,
    SubmitShapeHandler,
    SubmitShapeRequest,
)


async def shapes(input: ShapesInput, context: ShapesContext) -> None:
    kind: Literal["circle", "square"] = input["kind"]
    size: int = input["size"]
    tags: list[str] = input["tags"]
    name: str = input["owner"]["name"]
    shape: ShapesInputShape1 | ShapesInputShape2 = input["shape"]  # a union of two object shapes
    ratio: float | None = input.get("ratio")
    wrong: str = input["size"]  # type: ignore[assignment]
    await context.emit({"topic": "shapes.done", "data": {"id": input["id"]}})
    await context.emit({"topic": "shapes.done", "data": {"id": 1}})  # type: ignore[misc, arg-type]
    await context.emit({"topic": "shapes.sent", "data": {}})  # type: ignore[misc, arg-type]
    item = await context.streams.items.get("all", "x")
    title: str | None = item["title"] if item else None
    print(kind, size, tags, name, shape, ratio, wrong, title)


async def submit(req: SubmitShapeRequest, context: SubmitShapeContext) -> ApiResponse:
    flag: bool = req["body"]["nested"]["deep"]["flag"]
    label: str = req["body"]["label"]  # type: ignore[assignment]
    return {"status": 202, "body": {"id": req["body"]["id"], "flag": flag, "label": label}}


handler: ShapesHandler = shapes
api: SubmitShapeHandler = submit


async def invoice(input: MakeInvoiceInput, context: MakeInvoiceContext) -> None:
    status: Literal["draft", "sent"] = input["status"]
    qty: int = input["lines"][0]["qty"]
    discount: float | None = input.get("discount")
    sku: int = input["lines"][0]["sku"]  # type: ignore[assignment]
    print(status, qty, discount, sku)


invoice_handler: MakeInvoiceHandler = invoice
