"""Which project-bound resources a Gemini request names (each must reach the key that owns it)."""

from __future__ import annotations

from typing import Any


def named_resources(body: dict[str, Any]) -> tuple[str, ...]:
    """What an interaction's body names that lives in one project: the previous turn, a cache, files."""
    found: list[str] = []
    previous = body.get("previous_interaction_id")
    if isinstance(previous, str) and previous:
        found.append(f"interactions/{previous}")
    cached = body.get("cached_content")
    if isinstance(cached, str) and cached:
        found.append(cached)
    found += _file_uris(body.get("input"))
    return tuple(found)


def _file_uris(node: Any) -> list[str]:
    """`files/...` named by an input's content items (`uri`), at any depth."""
    out: list[str] = []
    todo = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            uri = item.get("uri") or item.get("fileUri") or item.get("file_uri")  # proto JSON takes both spellings
            if isinstance(uri, str) and "/files/" in uri:
                out.append("files/" + uri.rsplit("/files/", 1)[1].split("?", 1)[0])
            todo.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            todo.extend(item)
    return out


def generate_resources(body: dict[str, Any], raw: bytes) -> tuple[str, ...]:
    """A generateContent body: its `cachedContent`, and every `fileData.fileUri` of a Files API file."""
    found: list[str] = []
    cached = body.get("cachedContent")
    if isinstance(cached, str) and cached:
        found.append(cached)
    if raw.find(b"/files/") >= 0:  # the common body names no file: one byte search, no walk
        found += _file_uris([body.get("contents"), body.get("systemInstruction")])
    return tuple(found)
