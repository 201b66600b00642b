"""Local stand-ins for the APIs github-pr-agent calls: GitHub (REST v3), Slack (Web API) and an
OpenAI-compatible chat endpoint. Standard library only.

    python fakes/fake_services.py --port 4010 --webhook-url http://127.0.0.1:3000/webhook/github \
        --webhook-secret change-me

Paths mirror the real APIs under a prefix per service (/github, /slack/api, /openai/v1), so only the
base URLs in .env change between the fakes and the real services. Merging a PR makes the fake GitHub
send the signed `pull_request` `closed` webhook back to the app, as GitHub does. Every request is
recorded: GET /__requests lists them (method, path, headers, json/text body).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def diff_of(number: int) -> str:
    """A PR's diff; an odd-numbered PR leaves a TODO behind (the fake reviewer scores it low)."""
    added = "+// TODO: finish this\n" if number % 2 else "+const b = a + 1\n"
    return f"diff --git a/app.js b/app.js\n--- a/app.js\n+++ b/app.js\n@@ -1 +1,2 @@\n const a = 1\n{added}"


class Fake(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _body(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: Any) -> None:
        keep = ("authorization", "accept", "content-type", "x-github-api-version")
        with self.server.lock:
            self.server.requests.append({"method": self.command, "path": self.path, "body": body,
                                         "headers": {k: v for k, v in self.headers.items() if k.lower() in keep}})

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/__requests":
            with self.server.lock:
                return self._send(200, list(self.server.requests))
        self._record(None)
        if not self._authorised():
            return None
        if m := re.fullmatch(r"/github/repos/([^/]+/[^/]+)/pulls/(\d+)", self.path):
            if "diff" in (self.headers.get("accept") or ""):
                return self._send(200, diff_of(int(m.group(2))), "text/x-diff")
            return self._send(200, {"number": int(m.group(2)), "base": {"repo": {"full_name": m.group(1)}}})
        return self._send(404, {"message": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        self._record(body)
        if not self._authorised():
            return None
        if re.fullmatch(r"/github/repos/[^/]+/[^/]+/issues/\d+/comments", self.path):
            return self._send(201, {"id": len(self.server.requests), "body": body["body"]})
        if self.path == "/slack/api/chat.postMessage":
            return self._send(200, {"ok": True, "channel": body["channel"], "ts": "1700000000.000100"})
        if self.path == "/openai/v1/chat/completions":
            return self._send(200, self._completion(body))
        return self._send(404, {"message": "Not Found"})

    def do_PUT(self) -> None:  # noqa: N802
        body = self._body()
        self._record(body)
        if not self._authorised():
            return None
        if m := re.fullmatch(r"/github/repos/([^/]+/[^/]+)/pulls/(\d+)/merge", self.path):
            self._send(200, {"merged": True, "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
                             "message": "Pull Request successfully merged"})
            threading.Thread(target=self.server.merged_webhook, args=(m.group(1), int(m.group(2)))).start()
            return None
        return self._send(404, {"message": "Not Found"})

    def _authorised(self) -> bool:
        if (self.headers.get("authorization") or "").startswith("Bearer "):
            return True
        self._send(401, {"message": "Bad credentials"})
        return False

    def _completion(self, request: dict[str, Any]) -> dict[str, Any]:
        """A review of the diff: 9/10, or 4/10 when it contains a TODO."""
        diff = request["messages"][-1]["content"]
        score = 4 if "TODO" in diff else 9
        review = {"score": score, "summary": "Small, readable change." if score > 5 else "Unfinished work.",
                  "comments": ["Consider a test for the new value."]}
        return {"id": "chatcmpl-fake", "object": "chat.completion", "model": request.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": json.dumps(review)}}],
                "usage": {"prompt_tokens": len(diff) // 4, "completion_tokens": 40, "total_tokens": 40}}


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, webhook_url: str, webhook_secret: str) -> None:
        super().__init__(("127.0.0.1", port), Fake)
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def merged_webhook(self, repository: str, number: int) -> None:
        if not self.webhook_url:
            return
        payload = json.dumps({"action": "closed", "number": number, "pull_request": {
            "number": number, "merged": True, "title": f"PR {number}", "user": {"login": "octocat"},
            "base": {"repo": {"full_name": repository}}}}).encode()
        signature = "sha256=" + hmac.new(self.webhook_secret.encode(), payload, hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.webhook_url, data=payload, method="POST", headers={
            "content-type": "application/json", "x-github-event": "pull_request", "x-hub-signature-256": signature})
        with urllib.request.urlopen(request, timeout=10):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=4010)
    parser.add_argument("--webhook-url", default="", help="where merged-PR webhooks go (the app's /webhook/github)")
    parser.add_argument("--webhook-secret", default="change-me")
    args = parser.parse_args()
    server = FakeServer(args.port, args.webhook_url, args.webhook_secret)
    print(f"fake GitHub/Slack/OpenAI on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
