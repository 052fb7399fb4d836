"""Tool calls between the two shapes: ids that carry Gemini thought signatures, argument parsing.

Gemini attaches a `thoughtSignature` to a `functionCall` part and wants it back, on the same part,
when the conversation continues (Gemini 3 rejects the turn without it). OpenAI clients only keep
the tool call id, so the signature rides inside it:

    call_<base>__thought__<signature as unpadded URL-safe base64>

Gemini signatures are standard base64; `+/` become `-_` and `=` padding is dropped so the id stays
within [A-Za-z0-9_-]. `split_tool_call_id` reverses it exactly.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ._json import parse_object

SEPARATOR = "__thought__"
_TO_URLSAFE = str.maketrans("+/", "-_")
_FROM_URLSAFE = str.maketrans("-_", "+/")


def derive_call_id(response_id: str, choice: int, k: int) -> str:
    """A stable id for the k-th tool call of a choice, unique as long as response ids are."""
    digest = hashlib.blake2b(f"{response_id}:{choice}:{k}".encode(), digest_size=12).hexdigest()
    return "call_" + digest


def join_tool_call_id(base: str, signature: str | None) -> str:
    if not signature:
        return base
    return base + SEPARATOR + signature.translate(_TO_URLSAFE).rstrip("=")


def split_tool_call_id(call_id: str) -> tuple[str, str | None]:
    """(base id, thought signature or None)."""
    base, sep, encoded = call_id.partition(SEPARATOR)
    if not sep or not encoded:
        return call_id, None
    signature = encoded.translate(_FROM_URLSAFE)
    return base, signature + "=" * (-len(signature) % 4)


def parse_arguments(raw: Any) -> dict[str, Any]:
    """OpenAI tool-call arguments (a JSON string) -> the object Gemini wants.

    Anything that is not a JSON object is kept, as text, under "arguments": OpenAI does not
    validate arguments in history, and upstream models do emit broken JSON now and then.
    """
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    parsed = parse_object(raw) if isinstance(raw, str) else None
    return parsed if parsed is not None else {"arguments": raw}
