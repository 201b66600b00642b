config = {
    "type": "event",
    "name": "ShapesDone",
    "subscribes": ["shapes.done"],
    "emits": [],
    "input": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
}


async def handler(data, context):
    pass
