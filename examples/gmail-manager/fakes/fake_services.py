"""Local stand-ins for the APIs gmail-manager calls: Gmail API v1 (a small mailbox), an OpenAI-compatible
chat endpoint (a keyword spam scorer), ntfy (push) and Slack (Web API). Standard library only.

    python fakes/fake_services.py --port 4020

Paths mirror the real APIs under a prefix per service (/gmail, /openai/v1, /ntfy, /slack/api), so only
the base URLs in .env change between the fakes and the real services. The mailbox starts with three
messages today and two spam messages ten days old. Every request is recorded: GET /__requests lists
them (method, path, headers, json/text body); GET /__mailbox shows the mailbox.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAILBOX = "/gmail/gmail/v1/users/me/messages"
SPAM_WORDS = ("win", "prize", "free money", "lottery", "click here")


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

    def _send(self, status: int, payload: Any = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: Any) -> None:
        keep = ("authorization", "content-type")
        with self.server.lock:
            self.server.requests.append({"method": self.command, "path": self.path, "body": body,
                                         "headers": {k.lower(): v for k, v in self.headers.items()
                                                     if k.lower() in keep}})

    def _authorised(self) -> bool:
        if self.path.startswith("/ntfy") or (self.headers.get("authorization") or "").startswith("Bearer "):
            return True
        self._send(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials."}})
        return False

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/__requests":
            with self.server.lock:
                return self._send(200, list(self.server.requests))
        if url.path == "/__mailbox":
            with self.server.lock:
                return self._send(200, self.server.mailbox)
        self._record(None)
        if not self._authorised():
            return None
        if url.path == MAILBOX:
            ids = self.server.search(parse_qs(url.query).get("q", [""])[0])
            return self._send(200, {"messages": [{"id": i, "threadId": i} for i in ids],
                                    "resultSizeEstimate": len(ids)})
        return self._send(404, {"error": {"code": 404, "message": "Not Found"}})

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        self._record(body)
        if not self._authorised():
            return None
        if m := re.fullmatch(MAILBOX + r"/([^/]+)/modify", self.path):
            return self._send(200, self.server.modify(m.group(1), body))
        if self.path == MAILBOX + "/batchDelete":
            self.server.delete(body["ids"])
            return self._send(204)
        if self.path == "/openai/v1/chat/completions":
            return self._send(200, self._completion(body))
        if self.path in ("/ntfy", "/ntfy/"):
            return self._send(200, {"id": f"n{len(self.server.requests)}", "time": int(time.time()),
                                    "event": "message", "topic": body["topic"], "title": body.get("title"),
                                    "message": body.get("message"), "priority": body.get("priority", 3)})
        if self.path == "/slack/api/chat.postMessage":
            return self._send(200, {"ok": True, "channel": body["channel"], "ts": "1700000000.000100"})
        return self._send(404, {"error": {"code": 404, "message": "Not Found"}})

    def _completion(self, request: dict[str, Any]) -> dict[str, Any]:
        text = request["messages"][-1]["content"].lower()
        score = 0.95 if any(word in text for word in SPAM_WORDS) else 0.05
        return {"id": "chatcmpl-fake", "object": "chat.completion", "model": request.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": json.dumps({"spam_probability": score})}}]}


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Fake)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        today, old = date.today().isoformat(), (date.today() - timedelta(days=10)).isoformat()
        self.mailbox: dict[str, dict[str, Any]] = {
            **{f"inbox-{i}": {"date": today, "labelIds": ["INBOX"]} for i in range(3)},
            **{f"old-spam-{i}": {"date": old, "labelIds": ["SPAM"]} for i in range(2)}}

    def search(self, q: str) -> list[str]:
        """The ids matching a query of `in:spam`, `after:YYYY/MM/DD` and `older_than:Nd` terms."""
        with self.lock:
            found = []
            for message_id, message in self.mailbox.items():
                day = datetime.strptime(message["date"], "%Y-%m-%d").date()
                ok = True
                for term in q.split():
                    if term == "in:spam":
                        ok &= "SPAM" in message["labelIds"]
                    elif term.startswith("after:"):
                        ok &= day >= datetime.strptime(term[6:], "%Y/%m/%d").date()
                    elif term.startswith("older_than:") and term.endswith("d"):
                        ok &= day < date.today() - timedelta(days=int(term[11:-1]))
                if ok:
                    found.append(message_id)
            return found

    def modify(self, message_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            message = self.mailbox.setdefault(message_id, {"date": date.today().isoformat(), "labelIds": ["INBOX"]})
            labels = [x for x in message["labelIds"] if x not in body.get("removeLabelIds", [])]
            message["labelIds"] = labels + [x for x in body.get("addLabelIds", []) if x not in labels]
            return {"id": message_id, "labelIds": message["labelIds"]}

    def delete(self, ids: list[str]) -> None:
        with self.lock:
            for message_id in ids:
                self.mailbox.pop(message_id, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=4020)
    args = parser.parse_args()
    server = FakeServer(args.port)
    print(f"fake Gmail/OpenAI/ntfy/Slack on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
