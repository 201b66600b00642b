# Python event step: prices the order, keeps it in state and passes it on to the Ruby step.
PRICES = {"tea": 3.5, "cake": 4.0}

config = {
    "type": "event",
    "name": "PriceOrder",
    "flows": ["orders"],
    "subscribes": ["order.placed"],
    "emits": ["order.priced"],
    "input": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "item": {"type": "string"}, "qty": {"type": "integer"}},
        "required": ["id", "item", "qty"],
    },
}


async def handler(order, context):
    total = PRICES.get(order["item"], 1.0) * order["qty"]
    await context.state.set("orders", order["id"], {**order, "total": total})
    await context.emit({"topic": "order.priced", "data": {"id": order["id"], "total": total}})
