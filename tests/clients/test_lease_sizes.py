"""How much of a gateway key's limits one replica leases from Redis at a time: at most a tenth of each limit,
and nothing (a check in Redis per request) when a limit is too small to share out."""

from __future__ import annotations

from keymux.clients.leases import SLOTS, Size, size_of
from keymux.clients.model import Budget, GatewayClient


def client(**kw: object) -> GatewayClient:
    return GatewayClient(name="job", secret_hash="0" * 64, fingerprint="key:00000000", **kw)  # type: ignore[arg-type]


def test_a_key_without_limits_leases_the_most_slots() -> None:
    assert size_of(client()) == Size(slots=SLOTS, parallel=0, usd=-1.0, tokens=-1)


def test_a_lease_is_at_most_a_tenth_of_each_limit() -> None:
    assert size_of(client(rpm=300)) == Size(30, 0, -1.0, -1)
    assert size_of(client(rpm=10_000, rpd=200)) == Size(20, 0, -1.0, -1)
    assert size_of(client(max_parallel=50)) == Size(5, 5, -1.0, -1)  # parallel slots held with the request slots
    assert size_of(client(budget=Budget(2.0, "day"), tpm=1000)) == Size(SLOTS, 0, 0.2, 100)


def test_small_limits_are_checked_per_request() -> None:
    # rpm 10 must not get a lease of 100, nor of one: every request is checked in Redis.
    for small in ({"rpm": 10}, {"rpd": 19}, {"max_parallel": 4}, {"tpm": 9}, {"budget": Budget(0.0, "total")}):
        assert size_of(client(**small)) is None, small
    assert size_of(client(rpm=20)) == Size(2, 0, -1.0, -1)
