"""`/__steppe/api/flows`: the project as a graph (steps, streams, the edges between them) for the Flows and
Endpoints views, and `/__steppe/api/steps/{name}` for one step's details."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..steps import names_in
from .api import json_response


def _topics(items: Any) -> list[dict[str, Any]]:
    """`emits`-shaped lists (strings or `{topic, label?, conditional?}`) as `{topic, label, conditional}`."""
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            out.append({"topic": item, "label": None, "conditional": False})
        elif isinstance(item, dict) and item.get("topic"):
            out.append({"topic": str(item["topic"]), "label": item.get("label"),
                        "conditional": bool(item.get("conditional"))})
    return out


def step_node(step: Any, rel: Callable[[Any], str]) -> dict[str, Any]:
    c = step.config
    return {"id": f"step:{step.name}", "kind": "step", "name": step.name, "type": step.type,
            "language": step.language, "path": rel(step.path), "status": step.status,
            "error": step.error or step.unavailable or step.unhealthy, "flows": step.flows,
            "description": c.get("description"), "method": step.method if step.type == "api" else None,
            "route": step.route if step.type == "api" else None, "cron": c.get("cron"),
            "subscribes": step.subscribes, "emits": _topics(c.get("emits")),
            "virtualEmits": _topics(c.get("virtualEmits")),
            "virtualSubscribes": [t["topic"] for t in _topics(c.get("virtualSubscribes"))],
            "bodySchema": c.get("bodySchema"), "responseSchema": c.get("responseSchema"),
            "input": c.get("input"), "queryParams": c.get("queryParams"), "config": c}


def graph(steps: list[Any], streams: list[Any], stream_errors: dict[str, str], rel: Callable[[Any], str],
          seen_writes: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Nodes for steps and streams; an edge from each emitter to each subscriber of a topic (virtual when
    either end is virtual), and from a step to each stream its config names in `streams`/`writes` or that
    it was seen writing (Motia configs do not declare the streams a step writes)."""
    nodes = [step_node(s, rel) for s in steps]
    nodes += [{"id": f"stream:{d.name}", "kind": "stream", "name": d.name, "language": d.language,
               "path": rel(d.path), "status": "ok", "error": None, "flows": [], "config": d.config}
              for d in streams]
    nodes += [{"id": f"stream-error:{path}", "kind": "stream", "name": rel(path), "language": "?",
               "path": rel(path), "status": "error", "error": err, "flows": [], "config": {}}
              for path, err in stream_errors.items()]
    listeners: dict[str, list[tuple[str, bool]]] = {}
    for n in nodes:
        if n["kind"] == "step":
            for topic in n["subscribes"]:
                listeners.setdefault(topic, []).append((n["id"], False))
            for topic in n["virtualSubscribes"]:
                listeners.setdefault(topic, []).append((n["id"], True))
    edges = []
    stream_names = {d.name for d in streams}
    for n in nodes:
        if n["kind"] != "step":
            continue
        for emit, virtual in [*((e, False) for e in n["emits"]), *((e, True) for e in n["virtualEmits"])]:
            for target, virtual_in in listeners.get(emit["topic"], []):
                edges.append({"id": f"{n['id']}>{emit['topic']}>{target}", "source": n["id"], "target": target,
                              "topic": emit["topic"], "label": emit["label"] or emit["topic"],
                              "conditional": emit["conditional"], "virtual": virtual or virtual_in})
        declared = {name for key in ("streams", "writes") for name in names_in(n["config"].get(key))}
        seen = {stream for step, stream in seen_writes or () if step == n["name"]}
        for name in sorted((declared | seen) & stream_names):
            edges.append({"id": f"{n['id']}>stream:{name}", "source": n["id"], "target": f"stream:{name}",
                          "topic": None, "label": "writes", "conditional": False, "virtual": False,
                          "seen": name not in declared})
    flows = sorted({f for n in nodes for f in n["flows"]})
    return {"flows": flows, "nodes": nodes, "edges": edges}


def flow_routes(project: Any, seen_writes: set[tuple[str, str]]) -> list[Route]:
    async def flows(request: Request) -> Response:
        return json_response(200, graph(list(project.steps.values()), list(project.streams.values()),
                                        project.stream_errors, project.rel, seen_writes))

    return [Route("/flows", flows)]
