"""JSON Schema <-> Gemini `Schema` (the OpenAPI subset Gemini accepts in function declarations).

`to_gemini_schema` keeps only the fields Gemini's Schema message has and rewrites the common JSON
Schema idioms it lacks: `$ref` into `$defs` is inlined, `type: [T, "null"]` and `anyOf [..., null]`
become `nullable`, `oneOf` becomes `anyOf`, `const` becomes a one-value `enum`. Everything else
(`additionalProperties`, `$schema`, `strict`, `examples`, unsupported `format`s, ...) is dropped,
at every depth. Property *names* are never touched, so a property called `strict` survives.

`to_json_schema` goes the other way for OpenAI upstreams: upper-case Gemini types become JSON
Schema types and `nullable` becomes a `"null"` type.
"""

from __future__ import annotations

from typing import Any

_SCALAR_KEYS = frozenset({
    "title", "description", "pattern", "default", "example",
    "minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties",
    "minimum", "maximum", "propertyOrdering",
})
_FORMATS = {
    "string": {"enum", "date-time"},
    "integer": {"int32", "int64"},
    "number": {"float", "double"},
}
_MAX_REF_DEPTH = 8


def to_gemini_schema(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    return _to_gemini(schema, defs, 0)


def _resolve(ref: Any, defs: dict[str, Any]) -> Any:
    if not isinstance(ref, str):
        return None
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            return defs.get(ref[len(prefix):])
    return None


def _to_gemini(schema: dict[str, Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if "$ref" in schema:
        target = _resolve(schema["$ref"], defs)
        if not isinstance(target, dict) or depth >= _MAX_REF_DEPTH:
            out: dict[str, Any] = {"type": "object"}
            if isinstance(schema.get("description"), str):
                out["description"] = schema["description"]
            return out
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _to_gemini(merged, defs, depth + 1)

    out = {}
    nullable = schema.get("nullable") is True
    type_ = schema.get("type")
    if isinstance(type_, list):
        types = [t for t in type_ if isinstance(t, str) and t != "null"]
        nullable = nullable or "null" in type_
        if len(types) == 1:
            out["type"] = types[0]
        elif types:
            out["anyOf"] = [{"type": t} for t in types]
    elif isinstance(type_, str) and type_ != "null":
        out["type"] = type_
    elif type_ == "null":
        nullable = True

    for key, value in schema.items():
        if key in _SCALAR_KEYS:
            out[key] = value
        elif key == "properties" and isinstance(value, dict):
            props = {name: _to_gemini(sub, defs, depth) for name, sub in value.items() if isinstance(sub, dict)}
            if props:
                out["properties"] = props
        elif key == "items":
            if isinstance(value, list):  # tuple validation: Gemini has one item schema
                value = value[0] if value else {}
            if isinstance(value, dict):
                out["items"] = _to_gemini(value, defs, depth)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            variants = []
            for sub in value:
                if isinstance(sub, dict) and sub.get("type") == "null" and len(sub) == 1:
                    nullable = True
                elif isinstance(sub, dict):
                    variants.append(_to_gemini(sub, defs, depth))
            if len(variants) == 1:
                for k, v in variants[0].items():
                    out.setdefault(k, v)
                nullable = nullable or variants[0].get("nullable") is True
            elif variants:
                out["anyOf"] = out.get("anyOf", []) + variants
        elif key == "allOf" and isinstance(value, list):
            for sub in value:
                if isinstance(sub, dict):
                    for k, v in _to_gemini(sub, defs, depth).items():
                        out.setdefault(k, v)
        elif key == "const":
            if isinstance(value, str):
                out["enum"] = [value]
                out.setdefault("type", "string")
        elif key == "enum" and isinstance(value, list):
            if value and all(isinstance(v, str) for v in value):
                out["enum"] = value
            elif None in value and all(isinstance(v, str) or v is None for v in value):
                out["enum"] = [v for v in value if v is not None]
                nullable = True

    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(str(out.get("type", "")).lower(), ()):
        out["format"] = fmt
    required = schema.get("required")
    if isinstance(required, list) and "properties" in out:
        kept = [r for r in required if r in out["properties"]]
        if kept:
            out["required"] = kept
    if "enum" in out and "type" not in out and "anyOf" not in out:
        out["type"] = "string"
    if nullable:
        out["nullable"] = True
    return out


def to_json_schema(schema: Any) -> dict[str, Any]:
    """Gemini Schema (possibly with upper-case OpenAPI types) -> JSON Schema."""
    if not isinstance(schema, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out["items"] = to_json_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out["anyOf"] = [to_json_schema(sub) for sub in value]
        elif key in ("nullable", "propertyOrdering", "example"):
            continue
        else:
            out[key] = value
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "anyOf" in out:
            out["anyOf"].append({"type": "null"})
    return out
