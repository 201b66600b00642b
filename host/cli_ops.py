"""`steppe state`, `steppe cron run`, `steppe events`: look at and act on a running host's state, cron
steps and unrouted events over its admin API (the host is found as for `steppe dlq`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .cli_admin import _call


def _show(r: Any) -> int:
    print(json.dumps(r.json(), indent=2))
    return 0 if r.status_code < 300 else 1


def cmd_state(args: argparse.Namespace) -> int:
    a, names = args.action, [quote(n, safe="") for n in args.names]
    need = {"list": (0, 1), "get": (2, 2), "delete": (2, 2), "set": (3, 3)}[a]
    if not need[0] <= len(names) <= need[1]:
        usage = {"list": "list [GROUP]", "get": "get GROUP KEY", "delete": "delete GROUP KEY",
                 "set": "set GROUP KEY JSON"}[a]
        print(f"steppe state: error: usage: steppe state {usage} (see `steppe state --help`)", file=sys.stderr)
        return 2
    if a == "set":
        try:
            value = json.loads(args.names[2])
        except json.JSONDecodeError as e:
            print(f"steppe state: error: the value is not valid JSON: {e}", file=sys.stderr)
            return 2
        body: dict[str, Any] = {"value": value, **({"ttl": args.ttl} if args.ttl else {})}
        r = _call(args, "PUT", f"/__steppe/state/{names[0]}/{names[1]}", body)
    elif a == "delete":
        r = _call(args, "DELETE", f"/__steppe/state/{names[0]}/{names[1]}")
    else:
        r = _call(args, "GET", "/__steppe/state" + "".join(f"/{n}" for n in names))
    if r is None:
        return 1
    if a == "get" and r.status_code == 200:
        print(json.dumps(r.json()["value"], indent=2))
        return 0
    if a == "list" and not names and r.status_code == 200:
        groups = r.json()["groups"]
        print("\n".join(groups) if groups else "(no state)")
        return 0
    return _show(r)


def cmd_cron(args: argparse.Namespace) -> int:
    r = _call(args, "POST", f"/__steppe/cron/{quote(args.name, safe='')}/run")
    if r is None:
        return 1
    body = r.json()
    if r.status_code == 200 and body.get("ok"):
        print(f"{args.name} ran (trace {body['traceId']})")
        return 0
    print(f"error: {body.get('error')}" + (f" (cron steps: {', '.join(body['cronSteps'])})"
                                           if body.get("cronSteps") else ""), file=sys.stderr)
    return 1


def cmd_events(args: argparse.Namespace) -> int:
    if args.action == "replay":
        if not args.ids and not args.all:
            print("steppe events: error: name unrouted events by id, or use --all", file=sys.stderr)
            return 2
        r = _call(args, "POST", "/__steppe/events/replay", {"all": True} if args.all else {"ids": args.ids})
        return 1 if r is None else _show(r)
    r = _call(args, "GET", "/__steppe/events")
    if r is None:
        return 1
    body = r.json()
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    q = body["queue"]
    print(f"queue: {q['ready']} ready, {q['leased']} running, {q['dead']} dead")
    for step, n in (body.get("stepsGone") or {}).items():
        print(f"waiting for step {step!r}, which the project does not have now: {n} delivery(ies)")
    for e in body["unrouted"]:
        print(f"unrouted {e['id']}  {e['topic']}  from {e.get('emittedBy') or '?'}  {json.dumps(e['data'])[:80]}")
    return 0


STATE_HELP = """\
State of the running host (found through .steppe/host.json unless --url or --port is given).

actions:
  list                    the groups
  list GROUP              the values of a group, as JSON
  get GROUP KEY           one value, as JSON (exit 1 when there is none)
  set GROUP KEY JSON      write a value: steppe state set orders o-1 '{"item": "tea"}' [--ttl SECONDS]
  delete GROUP KEY        delete a value
"""

EVENTS_HELP = """\
Events of the running host: the queue's counts and the events no step subscribed to (unrouted).

actions:
  list [--json]           queue counts, then one line per unrouted event: id, topic, emitter, data
  replay ID... | --all    publish unrouted events again (after adding a step that subscribes)
"""


def add_ops_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    def url(p: argparse.ArgumentParser) -> None:
        common(p)
        p.add_argument("--url", default=None, help="host URL (default: from .steppe/host.json, else the port)")

    p = sub.add_parser("state", help="state of a running host: list, get, set, delete", description=STATE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    url(p)
    p.add_argument("action", choices=["list", "get", "set", "delete"], help="what to do (see above)")
    p.add_argument("names", nargs="*", help="GROUP, KEY, and for set the JSON value")
    p.add_argument("--ttl", type=float, default=None, help="set: seconds until the value expires")
    p.set_defaults(func=cmd_state)
    p = sub.add_parser("cron", help="run a cron step of a running host now: cron run NAME",
                       description="Run a cron step now, once, and wait until its handler ended.")
    url(p)
    p.add_argument("action", choices=["run"], help="run: run it now")
    p.add_argument("name", help="the cron step's name")
    p.set_defaults(func=cmd_cron)
    p = sub.add_parser("events", help="queue counts and unrouted events of a running host: list, replay",
                       description=EVENTS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    url(p)
    p.add_argument("action", nargs="?", choices=["list", "replay"], default="list", help="what to do (default list)")
    p.add_argument("ids", nargs="*", help="unrouted event ids (replay)")
    p.add_argument("--all", action="store_true", help="replay: every unrouted event")
    p.add_argument("--json", action="store_true", help="list: print JSON")
    p.set_defaults(func=cmd_events)
