# Marks a received email as processed.
config = {"type": "event", "name": "ProcessEmail", "subscribes": ["email-received"], "emits": []}


async def handler(email, context):
    key = f"email:{email['messageId']}"
    stored = await context.state.get("emails", key)
    await context.state.set("emails", key, {**stored, "processed": True})
