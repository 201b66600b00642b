# A Python event step whose input uses every schema shape type generation must handle.
config = {
    "type": "event",
    "name": "Shapes",
    "subscribes": ["shapes.sent"],
    "emits": ["shapes.done", "shapes.failed"],
    "input": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "kind": {"enum": ["circle", "square"]},
            "size": {"type": "integer"},
            "ratio": {"type": ["number", "null"]},
            "note": {"type": "string", "nullable": True},
            "tags": {"type": "array", "items": {"type": "string"}},
            "scores": {"type": "object", "additionalProperties": {"type": "number"}},
            "owner": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
                "required": ["name"],
            },
            "shape": {
                "anyOf": [
                    {"type": "object", "properties": {"r": {"type": "number"}}, "required": ["r"]},
                    {"type": "object", "properties": {"side": {"type": "number"}}, "required": ["side"]},
                ]
            },
            "point": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}]},
            "mode": {"const": "fast"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/child"}},
        },
        "required": ["id", "kind", "size", "tags", "owner", "shape"],
        "$defs": {"child": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
    },
}


async def handler(data, context):
    await context.emit({"topic": "shapes.done", "data": {"id": data["id"]}})
