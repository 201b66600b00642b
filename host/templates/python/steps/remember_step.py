# Counts how often each name was greeted (state group "greeted").
config = {"type": "event", "name": "Remember", "subscribes": ["hello.said"], "emits": []}


async def handler(data, context):
    times = await context.state.get("greeted", data["name"]) or 0
    await context.state.set("greeted", data["name"], times + 1)
