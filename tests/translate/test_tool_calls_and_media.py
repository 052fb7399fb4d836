"""Tool-call id scheme, argument parsing and media helpers."""

from __future__ import annotations

import base64
import re

import pytest

from keymux.translate.media import base64_size, guess_mime, parse_data_uri
from keymux.translate.tool_calls import derive_call_id, join_tool_call_id, parse_arguments, split_tool_call_id

ID_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")


@pytest.mark.parametrize("size", range(0, 40))
def test_signature_round_trips_for_every_padding(size: int) -> None:
    signature = base64.b64encode(bytes((i * 37 + 251) % 256 for i in range(size))).decode()
    call_id = join_tool_call_id("call_abc", signature or None)
    assert ID_CHARS.match(call_id)
    assert split_tool_call_id(call_id) == ("call_abc", signature or None)


@pytest.mark.parametrize("call_id,expected", [
    ("call_abc", ("call_abc", None)),
    ("toolu_01A", ("toolu_01A", None)),
    ("call_abc__thought__", ("call_abc__thought__", None)),  # nothing after the separator: not ours
    ("call_x__thought__YQ", ("call_x", "YQ==")),
    ("call_x__thought__YQ__thought__YQ", ("call_x", "YQ//thought//YQ=")),  # the first separator wins
])
def test_split_tool_call_id(call_id: str, expected: tuple[str, str | None]) -> None:
    assert split_tool_call_id(call_id) == expected


def test_derived_ids_are_stable_distinct_and_openai_like() -> None:
    ids = {derive_call_id("chatcmpl-1", c, k) for c in range(3) for k in range(5)}
    assert len(ids) == 15
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", i) for i in ids)
    assert derive_call_id("chatcmpl-1", 0, 0) == derive_call_id("chatcmpl-1", 0, 0)


@pytest.mark.parametrize("raw,expected", [
    ('{"a": 1}', {"a": 1}),
    ("", {}),
    ("   ", {}),
    (None, {}),
    ({"already": "parsed"}, {"already": "parsed"}),
    ("[1, 2]", {"arguments": "[1, 2]"}),
    ("{broken", {"arguments": "{broken"}),
    ("null", {"arguments": "null"}),
])
def test_parse_arguments(raw: object, expected: dict[str, object]) -> None:
    assert parse_arguments(raw) == expected


@pytest.mark.parametrize("uri,expected", [
    ("data:image/png;base64,QUJD", ("image/png", "QUJD")),
    ("data:IMAGE/PNG;charset=x;BASE64,QUJD", ("image/png", "QUJD")),
    ("data:;base64,QUJD", ("", "QUJD")),
    ("data:text/plain,hi%20there", ("text/plain", base64.b64encode(b"hi there").decode())),
    ("data:image/png;base64", None),
    ("https://x/y.png", None),
])
def test_parse_data_uri(uri: str, expected: tuple[str, str] | None) -> None:
    assert parse_data_uri(uri) == expected


@pytest.mark.parametrize("url,expected", [
    ("https://x.com/a.PNG", "image/png"),
    ("https://x.com/a.jpeg?x=1#frag", "image/jpeg"),
    ("https://x.com/a.webp", "image/webp"),
    ("https://x.com/dir.v2/file", "image/jpeg"),
    ("https://x.com/", "image/jpeg"),
    ("https://x.com/a.unknownext", "image/jpeg"),
    ("gs://b/c.pdf", "application/pdf"),
])
def test_guess_mime(url: str, expected: str) -> None:
    assert guess_mime(url) == expected


@pytest.mark.parametrize("raw", [b"", b"a", b"ab", b"abc", b"abcd", bytes(1000)])
def test_base64_size(raw: bytes) -> None:
    assert base64_size(base64.b64encode(raw).decode()) == len(raw)
