"""The ledger's edge (row.clean_row): what any database takes, and nothing changed when nothing needs it."""

from __future__ import annotations

from keymux.ledger.row import DETAIL_MAX, TEXT_MAX, Row, clean_row, clean_text


def row(**kw: object) -> Row:
    base = dict(id="r1", at=1.0, request_id="req-1", surface="openai", client="master", group="chat",
                key="gem:1234abcd", upstream_model="gemini-2.5-flash", status=200, outcome="ok",
                attempts=(("gem:1234abcd", "ok"),), prompt_tokens=1, completion_tokens=1, reasoning_tokens=0,
                total_tokens=2, cost=0.0, value=0.0, free_tier=True, latency=0.1, ttfb=0.05, stream=False)
    return Row(**{**base, **kw})  # type: ignore[arg-type]


def test_a_clean_row_is_the_same_object() -> None:
    r = row(client="José", detail="ünïcode is fine")
    assert clean_row(r) == r
    plain = row()
    assert clean_row(plain) is plain


def test_undecodable_bytes_surrogates_nuls_and_lengths_are_made_storable() -> None:
    undecodable = b"\xff\xfeid".decode("utf-8", "surrogateescape")  # as aiohttp hands over such a header
    r = clean_row(row(request_id=undecodable, client="a\x00b", group="g" * 5000, detail="d\ud800" * 400,
                      attempts=(("gem:1234abcd", "o\x00k"),)))
    assert r.request_id == "\\xff\\xfeid"
    assert r.client == "a\\x00b"
    assert r.group == "g" * TEXT_MAX
    assert len(r.detail) == DETAIL_MAX and r.detail.startswith("d\\ud800")
    assert r.attempts == (("gem:1234abcd", "o\\x00k"),)
    for text in (r.request_id, r.client, r.detail):
        text.encode("utf-8")  # strict: would raise on a surrogate


def test_none_stays_none_where_the_column_allows_it() -> None:
    r = clean_row(row(key=None, upstream_model=None, request_id="x\x00"))
    assert r.key is None and r.upstream_model is None and r.request_id == "x\\x00"


def test_clean_text_keeps_valid_text_as_is() -> None:
    text = "日本語のテキスト"
    assert clean_text(text) is text
