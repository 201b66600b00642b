from pydantic import BaseModel


class GreetingRequested(BaseModel):
    name: str
    requestId: str


def make_greeting(name: str) -> str:
    return f"Hello, {name}! (from Python)"
