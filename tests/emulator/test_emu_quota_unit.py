"""Pure helpers of keymux.emulator.quota: durations, Pacific days, windows, faults."""

from __future__ import annotations

from datetime import datetime

import pytest

from keymux.emulator.quota import (
    PACIFIC,
    EmuKey,
    FaultQueue,
    QuotaBook,
    go_duration,
    next_pacific_midnight,
    pacific_day_bounds,
    proto_duration,
)


def pt(*a: int) -> float:
    return datetime(*a, tzinfo=PACIFIC).timestamp()


@pytest.mark.parametrize(
    "secs,expected",
    [(26, "26s"), (26.1, "26.100s"), (26.123456, "26.123456s"), (26.1234564, "26.123456s"), (26.1234566, "26.123457s"), (0, "0s"),
     (59.9999999, "60s")],
)
def test_proto_duration(secs: float, expected: str) -> None:
    assert proto_duration(secs) == expected


def test_proto_duration_whole() -> None:
    assert proto_duration(26.9, whole=True) == "26s"


@pytest.mark.parametrize(
    "secs,expected",
    [(0, "0s"), (0.012, "12ms"), (1, "1s"), (1.5, "1.5s"), (8.64, "8.64s"), (360, "6m0s"),
     (90.5, "1m30.5s"), (3723, "1h2m3s"), (0.0004, "1ms")],
)
def test_go_duration(secs: float, expected: str) -> None:
    assert go_duration(secs) == expected


def test_pacific_midnight_normal_and_dst() -> None:
    assert next_pacific_midnight(pt(2026, 1, 15, 23, 59, 59)) == pt(2026, 1, 16)
    # DST starts 2026-03-08 (23 h day) and ends 2026-11-01 (25 h day)
    s, e = pacific_day_bounds(pt(2026, 3, 8, 12))
    assert e - s == 23 * 3600
    s, e = pacific_day_bounds(pt(2026, 11, 1, 12))
    assert e - s == 25 * 3600
    assert next_pacific_midnight(pt(2026, 1, 16)) == pt(2026, 1, 17)


def test_quota_book_rpm_sliding_window() -> None:
    book, ek, t0 = QuotaBook(), EmuKey(rpm=2), 1000.0
    book.record("s", "m", 1, t0)
    book.record("s", "m", 1, t0 + 10)
    hit = book.check("s", "m", ek, 1, t0 + 20)
    assert hit is not None and hit.kind == "rpm" and hit.retry_after == pytest.approx(40)
    assert book.check("s", "m", ek, 1, t0 + 60) is None  # first request left the window
    assert book.check("s", "other-model", ek, 1, t0 + 20) is None


def test_quota_book_tpm_and_rpd() -> None:
    book, t0 = QuotaBook(), 1_767_000_000.0
    ek = EmuKey(tpm=100)
    book.record("s", "m", 60, t0)
    book.record("s", "m", 30, t0 + 5)
    hit = book.check("s", "m", ek, 20, t0 + 10)
    assert hit is not None and hit.kind == "tpm" and hit.retry_after == pytest.approx(50)
    assert book.check("s", "m", ek, 10, t0 + 10) is None
    ek2 = EmuKey(rpd=1)
    book.record("d", "m", 0, t0)
    hit = book.check("d", "m", ek2, 0, t0 + 3600)
    assert hit is not None and hit.kind == "rpd" and 0 < hit.retry_after <= 60
    assert book.check("d", "m", ek2, 0, next_pacific_midnight(t0)) is None


def test_fault_queue_order() -> None:
    q = FaultQueue()
    q.push("a", ("503", "500"))
    q.push(None, ("bare429",))
    assert q.pop("b") == (None, "bare429")
    assert q.pop("b") is None
    assert q.pop("a") == ("a", "503")
    q.unpop(("a", "503"))
    assert q.pop("a") == ("a", "503")
    assert q.pop("a") == ("a", "500")
    with pytest.raises(ValueError):
        q.push(None, ("nope",))


def test_emukey_rejects_unknown_status() -> None:
    with pytest.raises(ValueError):
        EmuKey(status="weird")
