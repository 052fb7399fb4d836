"""Vertex AI service accounts: the OAuth2 access tokens keymux mints from them, cached until shortly before
they expire.

The service-account JSON is the deployment's secret (kept where other deployments keep their api_key).
google-auth signs the JWT assertion (RS256, its `crypt` signer); the token request itself is one POST through
keymux's own transport, so it is async like every upstream call, has its timeout, needs no thread and no
second HTTP stack. One `TokenSource` per service account, whichever deployments (and config roads) use it.
Tokens are secrets: they live only in that cache and in the upstream header, never in a message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import orjson

from keymux.providers.base import Outcome, Verdict
from keymux.upstream import UpstreamError

if TYPE_CHECKING:
    from google.auth import crypt

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
REFRESH_MARGIN = 300.0  # seconds before expiry a token is replaced (a call started then still finishes in time)
ASSERTION_LIFETIME = 3600  # Google's maximum
TOKEN_TIMEOUT = 30.0
_REFUSALS = ("invalid_grant", "invalid_client", "unauthorized_client", "access_denied", "invalid_scope")


class _Answer(Protocol):
    @property
    def status(self) -> int: ...

    async def read(self) -> bytes: ...

    def release(self) -> None: ...


class _Transport(Protocol):  # keymux.transport.Transport (a layer above this one)
    async def post(self, url: str, data: bytes, headers: Mapping[str, str], *, timeout: float,
                   stream: bool = False, method: str = "POST") -> Any: ...


class TokenError(Exception):
    """No token: `verdict` is what the deployment gets (a refused account disables it, an outage cools it)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass(frozen=True)
class ServiceAccount:
    email: str
    project_id: str | None
    token_uri: str
    key_id: str | None
    signer: crypt.Signer = field(repr=False, compare=False)  # google-auth's RS256 signer of the private key


def parse_account(text: str) -> ServiceAccount:
    """A service-account key file's JSON. ValueError says what is wrong, never quoting the file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from google.auth import crypt  # here, not at import: a config without Vertex never loads google-auth

    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("not JSON (expected a service-account key file, its path, or its JSON)") from None
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object (a service-account key file)")
    kind = doc.get("type", "service_account")
    if kind != "service_account":
        raise ValueError(f"credentials of type {str(kind)[:40]!r}: only service-account keys "
                         "(type service_account) are supported")
    for name in ("client_email", "private_key"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise ValueError(f"the service-account JSON has no {name}")
    token_uri = doc.get("token_uri") or DEFAULT_TOKEN_URI
    if not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://")):
        raise ValueError("token_uri is not a URL")
    try:  # the operator's own key file: its RSA self-check (~0.15 s a key) is skipped, the signature is not
        key = serialization.load_pem_private_key(doc["private_key"].encode(), None,
                                                 unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, IndexError):
        key = None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("private_key is not a PEM RSA private key")
    signer = crypt.RSASigner(key, doc.get("private_key_id") or None)
    project = doc.get("project_id")
    return ServiceAccount(doc["client_email"], project if isinstance(project, str) and project else None,
                          token_uri, doc.get("private_key_id") or None, signer)


def assertion(account: ServiceAccount, issued_at: int) -> bytes:
    from google.auth import jwt

    claims = {"iss": account.email, "scope": SCOPE, "aud": account.token_uri, "iat": issued_at,
              "exp": issued_at + ASSERTION_LIFETIME}
    return jwt.encode(account.signer, claims)


class TokenSource:
    """One account's current token. `now` is keymux's clock (when to refresh); the JWT's iat is wall time,
    because Google checks it against its own clock."""

    def __init__(self, account: ServiceAccount) -> None:
        self.account = account
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.minted = 0  # tokens obtained so far (for tests and the curious)

    def fresh(self, now: float) -> str | None:
        return self._token if self._token is not None and now < self._expires - REFRESH_MARGIN else None

    async def token(self, transport: _Transport, now: float) -> str:
        token = self.fresh(now)
        if token is not None:
            return token
        async with self._lock:  # one token request per account, however many calls are waiting for it
            token = self.fresh(now)
            if token is None:
                token, lifetime = await self._mint(transport)
                self._token, self._expires = token, now + lifetime
                self.minted += 1
            return token

    def forget(self, token: str) -> None:
        """The upstream refused `token`: the next call mints another."""
        if self._token == token:
            self._token = None

    async def _mint(self, transport: _Transport) -> tuple[str, float]:
        form = urlencode({"grant_type": GRANT_TYPE, "assertion": assertion(self.account, int(time.time()))})
        try:
            resp: _Answer = await transport.post(self.account.token_uri, form.encode(),
                                                 {"content-type": "application/x-www-form-urlencoded"},
                                                 timeout=TOKEN_TIMEOUT)
            try:
                raw = await resp.read()
            finally:
                resp.release()
        except (TimeoutError, UpstreamError) as e:
            raise TokenError(Verdict(Outcome.UPSTREAM_ERROR,
                                     reason=f"token endpoint unreachable ({type(e).__name__})")) from None
        return _read_token(resp.status, raw)


def _read_token(status: int, raw: bytes) -> tuple[str, float]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    if status == 200:
        token, lifetime = doc.get("access_token"), doc.get("expires_in", 3600)
        if isinstance(token, str) and token and isinstance(lifetime, (int, float)) and lifetime > 0:
            return token, float(lifetime)
        raise TokenError(Verdict(Outcome.UPSTREAM_ERROR, reason="token endpoint answered without an access token"))
    code = str(doc.get("error") or "")
    described = str(doc.get("error_description") or "")[:120]
    if status < 500 and code in _REFUSALS:
        why = f"{code}: {described}" if described else code
        raise TokenError(Verdict(Outcome.INVALID_KEY, reason=f"service account refused by the token endpoint ({why})"))
    raise TokenError(Verdict(Outcome.UPSTREAM_ERROR, reason=f"token endpoint answered {status}"))


class Accounts:
    """Token sources by service account: deployments built from the same key file share one."""

    def __init__(self) -> None:
        self._by_text: dict[str, tuple[ServiceAccount, TokenSource]] = {}
        self._by_account: dict[tuple[str, str | None, str], TokenSource] = {}

    def _parsed(self, credentials: str) -> tuple[ServiceAccount, TokenSource]:
        found = self._by_text.get(credentials)
        if found is None:  # parsing checks the RSA key (~0.1 s): once per key file text
            account = parse_account(credentials)
            key = (account.email, account.key_id, account.token_uri)
            found = self._by_text[credentials] = account, self._by_account.setdefault(key, TokenSource(account))
        return found

    def account(self, credentials: str) -> ServiceAccount:
        """This key file's account (ValueError when unusable)."""
        return self._parsed(credentials)[0]

    def source(self, credentials: str) -> TokenSource:
        return self._parsed(credentials)[1]

    async def token(self, credentials: str, transport: _Transport, now: float) -> str:
        try:
            src = self.source(credentials)
        except ValueError as e:  # a stored key broken since it was checked
            raise TokenError(Verdict(Outcome.INVALID_KEY, reason=f"unusable service account: {e}")) from None
        return await src.token(transport, now)

    def forget(self, credentials: str, token: str) -> None:
        found = self._by_text.get(credentials)
        if found is not None:
            found[1].forget(token)


# The process's token cache: a token outlives config reloads and is shared by every road that builds a
# deployment (YAML, admin API, stored keys).
ACCOUNTS = Accounts()

__all__ = ["ACCOUNTS", "Accounts", "ServiceAccount", "TokenError", "TokenSource", "parse_account"]
