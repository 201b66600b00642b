# The `orders` stream: clients subscribe to group "all" to watch each order's status change.
config = {
    "name": "orders",
    "schema": {
        "type": "object",
        "properties": {"item": {"type": "string"}, "qty": {"type": "integer"}, "status": {"type": "string"},
                       "total": {"type": "number"}},
        "required": ["status"],
    },
}
