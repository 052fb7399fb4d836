"""Access tokens minted from a service account against the token emulator, through keymux's own HTTP
client: when one is minted and refreshed (keymux's injectable clock), that concurrent calls share one token
request, and what a refusal or an outage of the token endpoint becomes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from keymux.clock import FakeClock
from keymux.emulator.google_token import TokenEmulator
from keymux.providers.base import Outcome
from keymux.providers.vertex_auth import REFRESH_MARGIN, Accounts, TokenError, parse_account
from keymux.upstream import Client

T0 = 1_795_716_000.0


@pytest.fixture
async def tokens() -> AsyncIterator[TokenEmulator]:
    emu = TokenEmulator(clock=FakeClock(T0))
    await emu.serve()
    yield emu
    await emu.close()


@pytest.fixture
async def http() -> AsyncIterator[Client]:
    client = Client()
    yield client
    await client.close()


def minted(tokens: TokenEmulator) -> int:
    return tokens.count(status=200)


async def test_a_token_is_reused_until_shortly_before_it_expires_then_replaced(tokens: TokenEmulator,
                                                                              http: Client) -> None:
    creds, accounts = orjson.dumps(tokens.account("proj-a")).decode(), Accounts()
    first = await accounts.token(creds, http, T0)
    assert first.startswith("ya29.") and tokens.holder(first) is not None
    last_use = T0 + tokens.lifetime - REFRESH_MARGIN - 0.5
    assert await accounts.token(creds, http, T0 + 60) == first
    assert await accounts.token(creds, http, last_use) == first
    assert minted(tokens) == 1
    second = await accounts.token(creds, http, last_use + 1.0)  # within the margin: a new one before expiry
    assert second != first and minted(tokens) == 2
    assert await accounts.token(creds, http, last_use + 2.0) == second


async def test_concurrent_calls_wait_for_one_token_request(tokens: TokenEmulator, http: Client) -> None:
    creds, accounts = orjson.dumps(tokens.account("proj-a")).decode(), Accounts()
    tokens.hold()
    waiting = [asyncio.create_task(accounts.token(creds, http, T0)) for _ in range(8)]
    await tokens.wait_held(1)
    tokens.release()
    assert len(set(await asyncio.gather(*waiting))) == 1
    assert minted(tokens) == 1


async def test_one_service_account_is_one_token_source_however_its_json_is_spelled(tokens: TokenEmulator,
                                                                                 http: Client) -> None:
    doc, accounts = tokens.account("proj-a"), Accounts()
    compact, pretty = orjson.dumps(doc).decode(), orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
    assert accounts.source(compact) is accounts.source(pretty)
    assert await accounts.token(compact, http, T0) == await accounts.token(pretty, http, T0)
    assert minted(tokens) == 1


async def test_a_forgotten_token_is_minted_anew(tokens: TokenEmulator, http: Client) -> None:
    creds, accounts = orjson.dumps(tokens.account("proj-a")).decode(), Accounts()
    first = await accounts.token(creds, http, T0)
    accounts.forget(creds, "ya29.some-other-token")  # not the current one: kept
    assert await accounts.token(creds, http, T0) == first
    accounts.forget(creds, first)
    assert await accounts.token(creds, http, T0) != first


async def test_a_refused_account_is_an_invalid_key_verdict_without_secrets(tokens: TokenEmulator,
                                                                         http: Client) -> None:
    doc = tokens.account("proj-a")
    tokens.accounts[doc["client_email"]].disabled = True
    with pytest.raises(TokenError) as err:
        await Accounts().token(orjson.dumps(doc).decode(), http, T0)
    v = err.value.verdict
    assert v.outcome is Outcome.INVALID_KEY
    assert v.reason == "service account refused by the token endpoint (invalid_grant: Invalid grant: account not found)"
    assert doc["client_email"] not in v.reason and "PRIVATE" not in v.reason


async def test_an_assertion_signed_by_another_key_is_refused(tokens: TokenEmulator, http: Client) -> None:
    doc, other = tokens.account("proj-a"), tokens.account("proj-b")
    forged = {**doc, "private_key": other["private_key"]}  # right account, wrong key: the signature fails
    with pytest.raises(TokenError) as err:
        await Accounts().token(orjson.dumps(forged).decode(), http, T0)
    assert err.value.verdict.outcome is Outcome.INVALID_KEY and "Invalid JWT Signature" in err.value.verdict.reason


async def test_an_outage_of_the_token_endpoint_cools_the_deployment_and_recovers(tokens: TokenEmulator,
                                                                              http: Client) -> None:
    creds, accounts = orjson.dumps(tokens.account("proj-a")).decode(), Accounts()
    tokens.outage = 1
    with pytest.raises(TokenError) as err:
        await accounts.token(creds, http, T0)
    assert err.value.verdict.outcome is Outcome.UPSTREAM_ERROR and err.value.verdict.reason == \
        "token endpoint answered 503"
    assert (await accounts.token(creds, http, T0)).startswith("ya29.")  # a failure is not cached


async def test_an_unreachable_token_endpoint_is_an_upstream_error(http: Client) -> None:
    emu = TokenEmulator(clock=FakeClock(T0))
    await emu.serve()
    creds = orjson.dumps(emu.account("proj-a")).decode()
    await emu.close()  # nothing listens there any more
    with pytest.raises(TokenError) as err:
        await Accounts().token(creds, http, T0)
    assert err.value.verdict.outcome is Outcome.UPSTREAM_ERROR and "unreachable" in err.value.verdict.reason


@pytest.mark.parametrize("change,message", [
    ({"type": "authorized_user"}, "only service-account keys"),
    ({"client_email": ""}, "has no client_email"),
    ({"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"}, "not a PEM RSA"),
    ({"token_uri": "file:///etc/passwd"}, "token_uri is not a URL"),
])
def test_a_broken_key_file_says_what_is_wrong_without_quoting_it(tokens: TokenEmulator, change: dict,
                                                                 message: str) -> None:
    doc = {**tokens.account("proj-a"), **change}
    with pytest.raises(ValueError) as err:
        parse_account(orjson.dumps(doc).decode())
    assert message in str(err.value) and "BEGIN" not in str(err.value)


def test_a_key_file_without_token_uri_uses_googles() -> None:
    from keymux.emulator.google_token import service_account

    doc, _ = service_account("proj-a", "x")
    del doc["token_uri"]
    assert parse_account(orjson.dumps(doc).decode()).token_uri == "https://oauth2.googleapis.com/token"
