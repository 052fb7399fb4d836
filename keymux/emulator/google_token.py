"""Google's OAuth2 token endpoint (oauth2.googleapis.com/token) for service accounts, on the wire.

    tokens = TokenEmulator(clock=FakeClock())
    await tokens.serve()
    key_file = tokens.account("proj-a")     # a service-account JSON with a fresh RSA key, token_uri here

`POST /token` takes the JWT-bearer grant (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=`),
checks the assertion's RS256 signature against the account's public key and its claims (iss a known account,
aud this endpoint, the cloud-platform scope, iat/exp within an hour of now), and answers Google's JSON:
`{"access_token", "expires_in", "token_type": "Bearer"}`, or `{"error", "error_description"}` with 400.
Tokens expire by the emulator's clock; `holder(token)` tells the Vertex emulator whose a token is.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from keymux.emulator.base import EmulatorBase

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
MSG_SIGNATURE = "Invalid JWT Signature."
MSG_NOT_FOUND = "Invalid grant: account not found"
MSG_TIMEFRAME = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                 "Check your iat and exp values in the JWT claim.")
MSG_SCOPE = "Invalid OAuth scope or ID token audience provided."
CLOCK_SKEW = 60  # seconds of wall-clock difference Google tolerates in iat / exp


@dataclass
class Issued:
    email: str
    expires: float  # emulator clock


@dataclass
class Account:
    email: str
    public_pem: bytes = field(repr=False)
    key_id: str
    disabled: bool = False


def service_account(project: str, token_uri: str, name: str | None = None) -> tuple[dict[str, Any], Account]:
    """A service-account key file's JSON with a freshly generated RSA key, and its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = f"{name or 'keymux-' + secrets.token_hex(3)}@{project}.iam.gserviceaccount.com"
    key_id = secrets.token_hex(20)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    doc = {"type": "service_account", "project_id": project, "private_key_id": key_id, "private_key": pem,
           "client_email": email, "client_id": str(int.from_bytes(secrets.token_bytes(8), "big")),
           "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
           "universe_domain": "googleapis.com"}
    return doc, Account(email, public, key_id)


class TokenEmulator(EmulatorBase):
    lifetime = 3599  # seconds, as Google answers

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__({}, *args, **kwargs)
        self.accounts: dict[str, Account] = {}
        self.issued: dict[str, Issued] = {}
        self.outage = 0  # answer this many next token requests with 503 (an outage of the endpoint)

    @staticmethod
    def default_models() -> list[str]:
        return []

    @property
    def token_uri(self) -> str:
        assert self.base_url is not None, "serve() first: the token_uri names this endpoint"
        return f"{self.base_url}/token"

    def account(self, project: str, name: str | None = None) -> dict[str, Any]:
        """A new service account of `project` that this endpoint knows: its key file's JSON."""
        doc, account = service_account(project, self.token_uri, name)
        self.accounts[account.email] = account
        return doc

    def holder(self, token: str) -> str | None:
        """The account a token was issued to, while it is valid."""
        issued = self.issued.get(token)
        if issued is None or self.clock.time() >= issued.expires:
            return None
        return issued.email

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get("/_emulator/stats", self._stats_handler)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        await self._delay()
        if self.outage > 0:
            self.outage -= 1
            return self._answer(503, {"error": "internal_failure", "error_description": "Backend Error"}, "")
        if form.get("grant_type") != GRANT_TYPE:
            return self._answer(400, {"error": "unsupported_grant_type",
                                      "error_description": f"Invalid grant_type: {str(form.get('grant_type'))[:60]}"}, "")
        assertion = str(form.get("assertion") or "")
        try:
            claims = jwt.decode(assertion, verify=False)
        except (ValueError, auth_exceptions.GoogleAuthError):
            return self._answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT: bad format."}, "")
        account = self.accounts.get(str(claims.get("iss")))
        if account is None or account.disabled:
            return self._answer(400, {"error": "invalid_grant", "error_description": MSG_NOT_FOUND}, "")
        try:  # the signature, and iat / exp against the wall clock, as Google's servers check them
            jwt.decode(assertion, certs={account.key_id: account.public_pem}, audience=self.token_uri,
                       clock_skew_in_seconds=CLOCK_SKEW)
        except (ValueError, auth_exceptions.GoogleAuthError) as e:
            text = str(e)
            message = MSG_SIGNATURE if "signature" in text.lower() or "certificate" in text.lower() else MSG_TIMEFRAME
            if "audience" in text.lower():
                message = MSG_SCOPE
            return self._answer(400, {"error": "invalid_grant", "error_description": message}, account.email)
        if int(claims.get("exp", 0)) - int(claims.get("iat", 0)) > 3600:
            return self._answer(400, {"error": "invalid_grant", "error_description": MSG_TIMEFRAME}, account.email)
        if SCOPE not in str(claims.get("scope", "")).split():
            return self._answer(400, {"error": "invalid_scope", "error_description": MSG_SCOPE}, account.email)
        token = "ya29.c." + secrets.token_urlsafe(48)
        self.issued[token] = Issued(account.email, self.clock.time() + self.lifetime)
        return self._answer(200, {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"},
                            account.email)

    def _answer(self, status: int, body: dict[str, Any], email: str) -> web.Response:
        self._log(email, "", status, "ok" if status == 200 else str(body.get("error")), False, "token")
        return web.Response(body=orjson.dumps(body), status=status,
                            headers={"Content-Type": "application/json; charset=utf-8"})


__all__ = ["Account", "TokenEmulator", "service_account"]
