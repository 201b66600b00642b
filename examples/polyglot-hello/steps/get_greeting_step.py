# A Python API step reading the flow's results back: the state the Python step wrote and the stream
# item the Ruby step wrote.
config = {
    "type": "api",
    "name": "GetGreeting",
    "description": "Read a greeting back",
    "path": "/greetings/:requestId",
    "method": "GET",
    "emits": [],
    "flows": ["hello"],
}


async def handler(req, context):
    request_id = req["pathParams"]["requestId"]
    greeting = await context.state.get("greetings", request_id)
    archived = await context.streams.greetings.get("all", request_id)
    beats = await context.state.get("heartbeat", "beats")
    if greeting is None:
        return {"status": 404, "body": {"error": f"no greeting {request_id}"}}
    return {"status": 200, "body": {"greeting": greeting, "archived": archived, "heartbeats": beats}}
