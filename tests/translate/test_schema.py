"""JSON Schema <-> Gemini Schema conversions used for function declarations."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from keymux.translate.schema import to_gemini_schema, to_json_schema

CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("not a schema", True, {}),
    ("oneOf becomes anyOf", {"oneOf": [{"type": "string"}, {"type": "integer"}]},
     {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
    ("Optional via anyOf null is inlined as nullable",
     {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}], "default": None, "title": "Nick"},
     {"type": "string", "maxLength": 5, "nullable": True, "default": None, "title": "Nick"}),
    ("several types", {"type": ["string", "integer", "null"]},
     {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}),
    ("const", {"const": "fixed"}, {"type": "string", "enum": ["fixed"]}),
    ("non-string enum is dropped", {"type": "integer", "enum": [1, 2]}, {"type": "integer"}),
    ("enum with null", {"enum": ["a", None]}, {"type": "string", "enum": ["a"], "nullable": True}),
    ("allOf merges", {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"description": "d"}]},
     {"type": "object", "properties": {"a": {"type": "string"}}, "description": "d"}),
    ("tuple items keep the first", {"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "minItems": 1},
     {"type": "array", "items": {"type": "string"}, "minItems": 1}),
    ("formats Gemini lacks are dropped",
     {"type": "object", "properties": {"a": {"type": "string", "format": "email"}, "b": {"type": "integer", "format": "int64"},
                                       "c": {"type": "number", "format": "decimal"}}},
     {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer", "format": "int64"}, "c": {"type": "number"}}}),
    ("JSON-Schema-only keywords vanish at every depth",
     {"type": "object", "$id": "x", "$comment": "c", "examples": [1], "strict": True, "additionalProperties": False,
      "properties": {"inner": {"type": "object", "exclusiveMinimum": 0, "patternProperties": {"^a": {}}, "unevaluatedProperties": False,
                               "properties": {"additionalProperties": {"type": "string"}}}}},
     {"type": "object", "properties": {"inner": {"type": "object", "properties": {"additionalProperties": {"type": "string"}}}}}),
    ("recursive $ref stops", {"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
                              "$ref": "#/$defs/Node"},
     {"type": "object", "properties": {"next": {"type": "object", "properties": {"next": {"type": "object", "properties": {
         "next": {"type": "object", "properties": {"next": {"type": "object", "properties": {"next": {"type": "object", "properties": {
             "next": {"type": "object", "properties": {"next": {"type": "object", "properties": {"next": {"type": "object"}}}}}}}}}}}}}}}}}),
    ("unknown $ref keeps the description", {"$ref": "https://elsewhere/schema.json", "description": "d"},
     {"type": "object", "description": "d"}),
    ("definitions (draft-07) resolve too",
     {"type": "object", "properties": {"p": {"$ref": "#/definitions/P", "description": "override"}},
      "definitions": {"P": {"type": "string", "description": "orig"}}},
     {"type": "object", "properties": {"p": {"type": "string", "description": "override"}}}),
]


@pytest.mark.parametrize("schema,expected", [(s, e) for _, s, e in CASES], ids=[n for n, _, _ in CASES])
def test_to_gemini_schema(schema: Any, expected: dict[str, Any]) -> None:
    out = to_gemini_schema(schema)
    assert out == expected
    types.Schema.model_validate(out)


def test_to_json_schema() -> None:
    gemini = {"type": "OBJECT", "propertyOrdering": ["a"], "example": {"a": 1}, "properties": {
        "a": {"type": "INTEGER", "nullable": True, "format": "int32"},
        "b": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}], "nullable": True},
        "c": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["x"]}}}}
    assert to_json_schema(gemini) == {"type": "object", "properties": {
        "a": {"type": ["integer", "null"], "format": "int32"},
        "b": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]},
        "c": {"type": "array", "items": {"type": "string", "enum": ["x"]}}}}
    assert to_json_schema(None) == {}
