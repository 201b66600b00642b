# A Python API step: POST /jobs {"items": n} starts a job. It shows 0 % at once in the `progress`
# stream, then hands the work to the Node step through the `job.started` event.
import secrets

config = {
    "type": "api",
    "name": "StartJob",
    "description": "Starts a job of n items; its progress is streamed to the `progress` stream",
    "path": "/jobs",
    "method": "POST",
    "flows": ["live-progress"],
    "emits": ["job.started"],
    "bodySchema": {
        "type": "object",
        "properties": {"items": {"type": "integer", "minimum": 1, "maximum": 200}},
        "required": ["items"],
    },
    "responseSchema": {
        202: {"type": "object", "properties": {"jobId": {"type": "string"}}, "required": ["jobId"]},
    },
}


async def handler(req, context):
    job_id = "job-" + secrets.token_hex(4)
    total = req["body"]["items"]
    await context.streams.progress.set(job_id, "progress", {"done": 0, "total": total, "percent": 0})
    await context.emit({"topic": "job.started", "data": {"jobId": job_id, "total": total}})
    context.logger.info("job started", {"jobId": job_id, "total": total})
    return {"status": 202, "body": {"jobId": job_id}}
