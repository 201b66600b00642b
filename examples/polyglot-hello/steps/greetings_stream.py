config = {
    "name": "greetings",
    "schema": {
        "type": "object",
        "properties": {"text": {"type": "string"}, "name": {"type": "string"}, "archivedBy": {"type": "string"}},
        "required": ["text"],
    },
}
