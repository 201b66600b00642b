# POST /hello {"name": "Ada"}: answers at once, and hands the name to the Remember step.
config = {
    "type": "api",
    "name": "SayHello",
    "path": "/hello",
    "method": "POST",
    "emits": ["hello.said"],
    "bodySchema": {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1}},
        "required": ["name"],
    },
}


async def handler(req, context):
    context.logger.info("hello", {"name": req.body["name"]})
    await context.emit({"topic": "hello.said", "data": {"name": req.body["name"]}})
    return {"status": 200, "body": {"greeting": f"Hello, {req.body['name']}!"}}
