"""priority-classifier: the tutorial's classifier, in Python. An email with an urgent keyword, or from a
VIP sender (the groupless state key `vip-senders`, kept by POST /vip-senders), is `high-priority`; the
email's record (`email:<id>`, written by email-processor) gets its priority either way."""

URGENT_KEYWORDS = ("urgent", "asap", "emergency", "critical")


async def handler(event):
    if event.topic != "email-received":
        return
    message_id, sender = event.data["messageId"], event.data["from"].strip().lower()
    text = f"{event.data['subject']} {event.data['body']}".lower()
    is_urgent = any(keyword in text for keyword in URGENT_KEYWORDS)
    is_vip = sender in (await event.state.get("vip-senders") or [])
    priority = "high" if is_urgent or is_vip else "normal"
    await event.state.update(f"email:{message_id}", [{"op": "merge", "value": {"priority": priority}}])
    if priority == "high":
        await event.emit("high-priority", {
            "messageId": message_id,
            "from": event.data["from"],
            "subject": event.data["subject"],
            "reason": "urgent-keywords" if is_urgent else "vip-sender",
        })
