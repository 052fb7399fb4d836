"""Typed reads from untrusted JSON objects: a wrong type reads as the default, never raises."""

from __future__ import annotations

from typing import Any

import orjson

Json = dict[str, Any]


def parse_object(text: str) -> Json | None:
    """`text` as a JSON object, or None when it is not one (invalid JSON, or another JSON type)."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def get_str(obj: Json, key: str, default: str = "") -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else default


def get_int(obj: Json, key: str, default: int = 0) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def get_dict(obj: Json, key: str) -> Json:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}
