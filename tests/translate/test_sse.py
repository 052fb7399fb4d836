"""SSEDecoder / sse_event: framing rules, split chunks, end of stream."""

from __future__ import annotations

import pytest

from keymux.translate.sse import SSEDecoder, sse_event


def feed_all(pieces: list[bytes]) -> list[bytes]:
    decoder = SSEDecoder()
    events = [e for piece in pieces for e in decoder.feed(piece)]
    return events + decoder.flush()


def every_split(raw: bytes) -> list[list[bytes]]:
    return [[raw[:i], raw[i:]] for i in range(len(raw) + 1)] + [[raw[i : i + 1] for i in range(len(raw))]]


CASES = [
    ("lf", b"data: a\n\ndata: b\n\n", [b"a", b"b"]),
    ("crlf", b"data: a\r\n\r\ndata: b\r\n\r\n", [b"a", b"b"]),
    ("cr", b"data: a\r\rdata: b\r\r", [b"a", b"b"]),
    ("mixed line ends", b"data: a\r\n\ndata: b\r\r\ndata: c\n\r", [b"a", b"b", b"c"]),
    ("multi-line data joins with LF", b"data: {\"a\":\ndata: 1}\n\n", [b"{\"a\":\n1}"]),
    ("comments and other fields ignored", b": keep-alive\nevent: message\nid: 7\nretry: 100\ndata: x\n\n", [b"x"]),
    ("no space after the colon", b"data:x\n\n", [b"x"]),
    ("only one leading space removed", b"data:  x \n\n", [b" x "]),
    ("a bare data field is an empty line", b"data\ndata: y\n\n", [b"\ny"]),
    ("events without data are not dispatched", b"event: ping\n\n: comment\n\ndata: z\n\n", [b"z"]),
    ("extra blank lines", b"\n\n\ndata: a\n\n\n\n", [b"a"]),
    ("unknown field", b"foo: bar\ndata: a\n\n", [b"a"]),
    ("last event without a blank line", b"data: a\n\ndata: b", [b"a", b"b"]),
    ("last event ends in one line end", b"data: a\r\n", [b"a"]),
    ("byte order mark", b"\xef\xbb\xbfdata: a\n\n", [b"a"]),
    ("colon inside the value", b"data: {\"url\": \"https://x\"}\n\n", [b"{\"url\": \"https://x\"}"]),
]


@pytest.mark.parametrize("raw,expected", [(r, e) for _, r, e in CASES], ids=[n for n, _, _ in CASES])
def test_framing_at_every_split(raw: bytes, expected: list[bytes]) -> None:
    for pieces in every_split(raw):
        assert feed_all(pieces) == expected, pieces


@pytest.mark.parametrize("raw,expected", [(r, e) for n, r, e in CASES if n != "byte order mark"],
                         ids=[n for n, _, _ in CASES if n != "byte order mark"])
def test_a_whole_chunk_after_a_whole_event_reads_the_same(raw: bytes, expected: list[bytes]) -> None:
    """Mid-stream, a chunk that is one whole `data: ` event takes a shortcut; every other chunk must not."""
    for first in (b"data: w\n\n", b"data: w\r\n\r\n"):
        assert feed_all([first, raw]) == [b"w", *expected]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []  # the LF closes the first line, not a blank line
    assert decoder.feed(b"\n\r\n") == [b"a\nb"]
    assert decoder.flush() == []


def test_complete_events_come_out_as_soon_as_they_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\ndata: tw") == [b"one"]
    assert decoder.feed(b"o\n\n") == [b"two"]
    assert decoder.feed(b"") == []
    assert decoder.flush() == []


def test_flush_resets_the_decoder() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: partial")
    assert decoder.flush() == [b"partial"]
    assert decoder.flush() == []
    assert decoder.feed(b"data: next\n\n") == [b"next"]


def test_a_large_event_in_small_pieces() -> None:
    payload = b"{\"data\":\"" + b"A" * 3_000_000 + b"\"}"
    raw = b"data: " + payload + b"\r\n\r\ndata: tail\r\n\r\n"
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(raw), 4096):
        events.extend(decoder.feed(raw[i : i + 4096]))
    assert events == [payload, b"tail"]


def test_sse_event_frames_a_payload() -> None:
    assert sse_event(b"{\"a\":1}") == b"data: {\"a\":1}\n\n"
    assert feed_all([sse_event(b"x"), sse_event(b"y")]) == [b"x", b"y"]


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_the_encoder_writes_data_only_and_named_events_the_decoder_reads(crlf: bool) -> None:
    data = sse_event(b'{"a":1}', crlf=crlf)
    named = sse_event(b'{"type":"message_start"}', crlf=crlf, event=b"message_start")
    end = b"\r\n" if crlf else b"\n"
    assert data == b'data: {"a":1}' + end + end
    assert named == b"event: message_start" + end + b'data: {"type":"message_start"}' + end + end
    decoder = SSEDecoder()
    assert decoder.feed(data + named) == [b'{"a":1}', b'{"type":"message_start"}']
