# A Python event step whose input is a Pydantic model (nested models become $defs + $ref).
from typing import Literal

from pydantic import BaseModel


class Line(BaseModel):
    sku: str
    qty: int


class Invoice(BaseModel):
    number: str
    status: Literal["draft", "sent"]
    lines: list[Line]
    discount: float | None = None
    extra: dict[str, str] = {}


config = {"type": "event", "name": "MakeInvoice", "subscribes": ["invoice.made"], "emits": [], "input": Invoice}


async def handler(data, context):
    pass
