"""`steppe emit` and `steppe dlq`: commands that talk to a running host over its admin API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hostfile import running_host_url
from .settings import Settings, load_settings

if TYPE_CHECKING:
    import httpx


def admin_headers(settings: Settings) -> dict[str, str]:
    """The admin token (STEPPE_ADMIN_TOKEN or steppe.toml admin_token) as a bearer header, when one is set."""
    return {"authorization": f"Bearer {settings.admin_token}"} if settings.admin_token else {}


def _url(args: argparse.Namespace) -> str:
    """--url, else --port, else the host that wrote .steppe/host.json, else the configured port."""
    if args.url:
        return str(args.url).rstrip("/")
    settings = load_settings(Path(args.root), port=args.port)
    found = running_host_url(settings) if args.port is None else None
    return found or f"http://127.0.0.1:{settings.port}"


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> httpx.Response | None:
    import httpx  # here, not at the top: `steppe start` never needs it (start-up time)

    url = _url(args)
    headers = admin_headers(load_settings(Path(args.root), port=args.port))
    try:
        r = httpx.request(method, f"{url}{path}", json=body, timeout=30, headers=headers)
    except httpx.HTTPError as e:
        print(f"error: no Steppe host answered at {url} ({e}); start one with `steppe dev`", file=sys.stderr)
        return None
    if r.status_code in (401, 403) and path.startswith("/__steppe/"):
        reason = r.json().get("reason", "") if r.headers.get("content-type") == "application/json" else r.text
        print(f"error: the host refused the admin request ({r.status_code}): {reason}", file=sys.stderr)
        return None
    return r


def cmd_emit(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as e:
        print(f"error: --data is not valid JSON: {e}", file=sys.stderr)
        return 2
    body = {"topic": args.topic, "data": data, **({"id": args.id} if args.id else {})}
    if (r := _call(args, "POST", "/__steppe/emit", body)) is None:
        return 1
    print(r.text)
    return 0 if r.status_code < 300 else 1


def _selection(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.all:
        return {"all": True}
    if args.step:
        return {"step": args.step}
    if args.ids:
        return {"ids": args.ids}
    print("error: name dead letters by id, or use --step NAME or --all", file=sys.stderr)
    return None


def cmd_dlq(args: argparse.Namespace) -> int:
    if args.action == "list":
        r = _call(args, "GET", "/__steppe/dlq" + (f"?step={args.step}" if args.step else ""))
        if r is None:
            return 1
        rows = r.json()
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print("the dead-letter store is empty")
        for d in [] if args.json else rows:
            when = datetime.fromtimestamp(d["failedAt"]).strftime("%Y-%m-%d %H:%M:%S")
            topic = d["event"]["topic"] if d["event"] else "(unreadable)"  # a CorruptRecord keeps raw bytes
            print(f"{d['id']:>6}  {when}  {d['step']}  {topic}  attempts={d['attempts']}  {d['error']}")
        return 0
    if args.action == "show":
        if not args.ids:
            print("error: dlq show needs an id", file=sys.stderr)
            return 2
        r = _call(args, "GET", f"/__steppe/dlq/{args.ids[0]}")
        if r is None:
            return 1
        print(json.dumps(r.json(), indent=2))
        return 0 if r.status_code == 200 else 1
    if (selection := _selection(args)) is None:
        return 2
    r = _call(args, "POST", f"/__steppe/dlq/{args.action}", selection)
    if r is None:
        return 1
    print(r.text)
    return 0 if r.status_code == 200 else 1


DLQ_HELP = """\
Deliveries that failed every attempt wait in the dead-letter store of the running host.

actions:
  list [--step NAME] [--json]     one line per dead letter: id, time, step, topic, attempts, error
  show ID                         one dead letter in full (its event and last error), as JSON
  replay ID... | --step NAME | --all
                                  queue them again with fresh attempts (they leave the store)
  drop ID... | --step NAME | --all
                                  delete them for good

The host is found through .steppe/host.json (written by `steppe dev`/`start`), unless --url or --port
is given. Examples:
  steppe dlq list
  steppe dlq show 3
  steppe dlq replay --step SendEmail
"""


def add_admin_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("emit", help="emit an event into a running host")
    common(p)
    p.add_argument("--topic", required=True, help="topic to emit")
    p.add_argument("--data", default="null", help="event data as JSON (default null)")
    p.add_argument("--id", default=None, help="idempotency id: a second emit with it within a day is ignored")
    p.add_argument("--url", default=None, help="host URL (default: from .steppe/host.json, else http://127.0.0.1:<port>)")
    p.set_defaults(func=cmd_emit)
    p = sub.add_parser("dlq", help="the dead-letter store of a running host: list, show, replay, drop",
                       description=DLQ_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(p)
    p.add_argument("action", choices=["list", "show", "replay", "drop"], help="what to do (see above)")
    p.add_argument("ids", nargs="*", type=int, help="dead-letter ids")
    p.add_argument("--step", default=None, help="all dead letters of this step (list: filter by step)")
    p.add_argument("--all", action="store_true", help="every dead letter")
    p.add_argument("--json", action="store_true", help="list: print JSON")
    p.add_argument("--url", default=None, help="host URL (default: from .steppe/host.json, else http://127.0.0.1:<port>)")
    p.set_defaults(func=cmd_dlq)
