# A Python event step: relative import from the steps folder, a Pydantic input schema, state, emit.
from .services.greetings import GreetingRequested, make_greeting

config = {
    "type": "event",
    "name": "MakeGreeting",
    "description": "Builds the greeting text and keeps it in state",
    "subscribes": ["greeting.requested"],
    "emits": ["greeting.created"],
    "input": GreetingRequested.model_json_schema(),
    "flows": ["hello"],
}


async def handler(input, context):
    greeting = {"requestId": input["requestId"], "name": input["name"], "text": make_greeting(input["name"])}
    await context.state.set("greetings", input["requestId"], greeting)
    context.logger.info("greeting stored", {"requestId": input["requestId"]})
    await context.emit({"topic": "greeting.created", "data": greeting})
