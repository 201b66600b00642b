"""What type generation needs from a loaded project: per step its input schema and emitted topics, per
topic its data schema (from the steps subscribing to it), per stream its item schema."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]


@dataclass
class StepTypes:
    name: str
    type: str  # api | event | cron | noop
    input: Schema | None  # api: bodySchema, event: input
    emits: list[str]
    responses: dict[str, Schema] = field(default_factory=dict)  # api: status → body schema


@dataclass
class ProjectTypes:
    steps: list[StepTypes]
    topics: dict[str, Schema | None]
    streams: dict[str, Schema | None]


def project_types(steps: list[Any], streams: list[Any]) -> ProjectTypes:
    """From Step objects (host/steps.py) that loaded and StreamDefs (host/project.py)."""
    rows: list[StepTypes] = []
    topics: dict[str, Schema | None] = {}
    inputs: dict[str, list[Schema]] = {}  # topic → every subscriber's input schema
    for step in sorted(steps, key=lambda s: s.name):
        c = step.config
        schema = c.get("bodySchema") if step.type == "api" else c.get("input") if step.type == "event" else None
        responses = c.get("responseSchema") if step.type == "api" else None
        rows.append(StepTypes(step.name, step.type, schema if isinstance(schema, dict) else None, step.emits,
                              {str(k): v for k, v in responses.items() if isinstance(v, dict)}
                              if isinstance(responses, dict) else {}))
        for topic in step.subscribes if step.type == "event" else []:
            topics.setdefault(topic, None)
            if isinstance(schema, dict) and schema not in inputs.setdefault(topic, []):
                inputs[topic].append(schema)
        for topic in step.emits:
            topics.setdefault(topic, None)
    for topic, schemas in inputs.items():
        topics[topic] = schemas[0] if len(schemas) == 1 else every_of(schemas)
    stream_types = {s.name: s.config.get("schema") if isinstance(s.config.get("schema"), dict) else None
                    for s in sorted(streams, key=lambda s: s.name)}
    return ProjectTypes(rows, dict(sorted(topics.items())), stream_types)


def every_of(schemas: list[Schema]) -> Schema:
    """Data that every one of `schemas` accepts (a topic's subscribers each check their own `input`): their
    allOf, carrying their `$defs`/`definitions` so that local `$ref`s still resolve from it."""
    combined: Schema = {"allOf": schemas}
    for key in ("$defs", "definitions"):
        defs = {name: d for s in schemas if isinstance(s.get(key), dict) for name, d in s[key].items()}
        if defs:
            combined[key] = defs
    return combined


def pascal(name: str) -> str:
    """A PascalCase identifier from a step, topic or property name."""
    words = re.findall(r"[A-Za-z0-9]+", name)
    ident = "".join(w[:1].upper() + w[1:] for w in words) or "T"
    return "T" + ident if ident[0].isdigit() else ident


def resolve(schema: Any, root: Schema, seen: tuple[str, ...] = ()) -> tuple[Any, tuple[str, ...]]:
    """Follows a local `$ref` (#/$defs/X or #/definitions/X); a cycle resolves to {} (any JSON)."""
    while isinstance(schema, dict) and isinstance(ref := schema.get("$ref"), str) and ref.startswith("#/"):
        if ref in seen:
            return {}, seen
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        schema, seen = (target if isinstance(target, dict) else {}), (*seen, ref)
    return schema, seen


def variants(schema: Schema) -> list[Any] | None:
    """The alternatives of anyOf/oneOf, or None."""
    alts = schema.get("anyOf") or schema.get("oneOf")
    return alts if isinstance(alts, list) and alts else None


def types_of(schema: Schema) -> list[str]:
    t = schema.get("type")
    names = t if isinstance(t, list) else [t] if isinstance(t, str) else []
    if schema.get("nullable") is True and "null" not in names:
        names = [*names, "null"]
    return names
