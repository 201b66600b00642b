"""Schema failures in plain words: what was expected and what came, instead of jsonschema's own phrasing
("0 is less than or equal to the minimum of 0"). The path of the failing value is reported beside this."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema is imported only once a schema is validated (invoker.SchemaValidator)
    from jsonschema import ValidationError

_KINDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
          "object": "an object", "array": "an array", "null": "null"}


def kind_of(value: Any) -> str:
    """The JSON kind of a value, with an article ("a string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else kind_of(value)
    return text if len(text) <= 60 else text[:57] + "..."


def plain_message(error: ValidationError) -> str:
    v, limit, got = error.validator, error.validator_value, error.instance
    if v == "type":
        wanted = [limit] if isinstance(limit, str) else list(limit)
        expected = " or ".join(_KINDS.get(str(t), str(t)) for t in wanted)
        shown = "" if isinstance(got, (dict, list)) else f" ({_shown(got)})"
        return f"expected {expected}, got {kind_of(got)}{shown}"
    if v == "required":
        missing = [name for name in limit if isinstance(got, dict) and name not in got]
        return f"missing the required field {missing[0]!r}" if missing else error.message
    bounds = {"minimum": "at least", "exclusiveMinimum": "greater than", "maximum": "at most",
              "exclusiveMaximum": "less than"}
    if v in bounds and not isinstance(limit, bool):
        return f"expected a number {bounds[str(v)]} {limit}, got {_shown(got)}"
    sizes = {"minLength": ("at least", "characters"), "maxLength": ("at most", "characters"),
             "minItems": ("at least", "items"), "maxItems": ("at most", "items"),
             "minProperties": ("at least", "fields"), "maxProperties": ("at most", "fields")}
    if v in sizes and hasattr(got, "__len__"):
        how, unit = sizes[str(v)]
        return f"expected {how} {limit} {unit[:-1] if limit == 1 else unit}, got {len(got)}"
    if v == "enum":
        return f"expected one of {', '.join(_shown(x) for x in limit)}, got {_shown(got)}"
    if v == "const":
        return f"expected {_shown(limit)}, got {_shown(got)}"
    if v == "pattern":
        return f"expected text matching the pattern {limit}, got {_shown(got)}"
    if v == "format":
        return f"expected a valid {limit}, got {_shown(got)}"
    if v == "multipleOf":
        return f"expected a multiple of {limit}, got {_shown(got)}"
    return error.message
