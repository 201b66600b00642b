# Keeps each placed order in state (group "orders") and announces it as stored.
config = {
    "type": "event",
    "name": "StoreOrder",
    "subscribes": ["order.placed"],
    "emits": ["order.stored"],
}


async def handler(order, context):
    await context.state.set("orders", order["id"], {**order, "stored": True})
    context.logger.info("order stored", {"id": order["id"]})
    await context.emit({"topic": "order.stored", "data": {"id": order["id"]}})
