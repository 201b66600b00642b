config = {"name": "items", "schema": {"type": "object", "properties": {"title": {"type": "string"}},
                                      "required": ["title"]}}
