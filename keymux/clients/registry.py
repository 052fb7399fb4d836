"""The gateway keys this gateway knows: from the config file (`general_settings.virtual_keys`) and made at
run time through the admin API (stored in the ledger database as documents holding the key's hash).

Lookup is by the hash of the presented key (keymux/clients/secrets.py), then a constant-time comparison.
Keys that verified are remembered (`VERIFIED`, at most that many), so a client's next request skips the hash.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Protocol

import orjson

from keymux.clients.counters import Counters, MemoryCounters
from keymux.clients.model import GatewayClient, apply, check_name, from_litellm, from_stored
from keymux.clients.periods import period_bounds, zone
from keymux.clients.secrets import fingerprint_of, hash_secret, new_secret, same_hash
from keymux.clock import Clock
from keymux.config.fields import ConfigError
from keymux.errors import BadRequest, Conflict, KeymuxError, NotFound, Unauthorized
from keymux.live import Snapshot

log = logging.getLogger("keymux.clients")
VERIFIED = 1024  # presented keys remembered after they verified (only those: a wrong key cannot fill it)


class ClientStore(Protocol):
    """Where run-time gateway keys are kept: the ledger (keymux/ledger/writer.py)."""

    async def gateway_clients(self) -> list[str]: ...

    async def save_gateway_client(self, name: str, doc: str, at: float) -> None: ...

    async def delete_gateway_client(self, name: str) -> None: ...

    async def client_spend(self, name: str, since: float) -> float: ...


class Registry:
    def __init__(self, store: ClientStore, counters: Counters, clock: Clock) -> None:
        self.store = store
        self.counters = counters
        self.clock = clock
        self.by_name: dict[str, GatewayClient] = {}
        self._by_hash: dict[str, GatewayClient] = {}
        # Presented key -> its client. A dict lookup compares strings only once their 64-bit (randomly keyed)
        # hashes are equal, so its timing tells nothing about a key that is not already known here.
        self._verified: dict[str, GatewayClient] = {}

    def __bool__(self) -> bool:  # an empty registry costs the master key nothing
        return bool(self.by_name)

    # -- loading ------------------------------------------------------------------------------
    def load_config(self, specs: tuple[dict[str, Any], ...], now: float) -> None:
        """(Re)place the keys from the config file; run-time keys stay. A broken list changes nothing."""
        fresh: dict[str, GatewayClient] = {}
        for i, spec in enumerate(specs):
            where = f"general_settings.virtual_keys[{i}]"
            try:
                client = config_client(spec, now)
            except KeymuxError as e:
                raise ConfigError("config", where, "a gateway key", message=e.message) from None
            if client.name in fresh:
                raise ConfigError("config", where, "a unique name", message=f"the name '{client.name}' is used twice")
            fresh[client.name] = client
        for name in [n for n, c in self.by_name.items() if c.source == "config" or n in fresh]:
            self._drop(name)
        for client in fresh.values():
            self._put(client)

    async def load_stored(self, now: float) -> None:
        for doc in await self.store.gateway_clients():
            client = from_stored(orjson.loads(doc))
            if client.name in self.by_name:
                log.warning("stored gateway key '%s' skipped: the config file has one of that name", client.name)
                continue
            self._put(client)
        if isinstance(self.counters, MemoryCounters):  # a fresh process: this period's spend from the ledger
            for client in self.by_name.values():
                if client.budget is not None:
                    start, _ = period_bounds(client.budget.period, now, zone(client.timezone))
                    await self.counters.restore(client, await self.store.client_spend(client.name, start), now)

    async def start(self) -> None:
        """The counters' connection (Redis); then `load_stored`, which needs the ledger database."""
        start = getattr(self.counters, "start", None)
        if start is not None:
            await start()

    async def stop(self) -> None:
        stop = getattr(self.counters, "stop", None)
        if stop is not None:
            await stop()

    def swapped(self, snapshot: Snapshot) -> None:
        """A reload: the config file's keys as it now says (a broken list keeps the old keys, logged)."""
        try:
            self.load_config(snapshot.config.virtual_keys, self.clock.time())
        except ConfigError as e:
            log.error("gateway keys in the reloaded config ignored: %s", e)

    # -- authentication -----------------------------------------------------------------------
    def authenticate(self, given: str, now: float) -> GatewayClient | None:
        """The client this key belongs to (None: not a gateway key); Unauthorized when it may not be used."""
        client = self._verified.get(given)
        if client is None:
            digest = hash_secret(given)
            client = self._by_hash.get(digest)
            if client is None or not same_hash(client.secret_hash, digest):
                return None
            if len(self._verified) >= VERIFIED:
                self._verified.clear()
            self._verified[given] = client
        why = client.unusable(now) if client.disabled or client.expires is not None else None
        if why is not None:
            raise Unauthorized(why)
        return client

    # -- administration -----------------------------------------------------------------------
    def get(self, name: str) -> GatewayClient:
        client = self.by_name.get(name)
        if client is None:
            raise NotFound(f"no gateway key named '{name}'")
        return client

    def find(self, given: str) -> GatewayClient | None:
        """By the key itself or by its hash (LiteLLM's `token`), whatever its state."""
        digest = given if len(given) == 64 and given in self._by_hash else hash_secret(given)
        client = self._by_hash.get(digest)
        return client if client is not None and same_hash(client.secret_hash, digest) else None

    async def create(self, doc: dict[str, Any], now: float, secret: str | None = None) -> tuple[GatewayClient, str]:
        name = check_name(doc.get("name"))
        if name in self.by_name:
            raise Conflict(f"a gateway key named '{name}' already exists")
        secret = secret or new_secret()
        if len(secret) < 16:
            raise BadRequest("a chosen key must be at least 16 characters long", param="key")
        digest = hash_secret(secret)
        if digest in self._by_hash:
            raise Conflict("that key is already in use")
        client = apply(GatewayClient(name=name, secret_hash=digest, fingerprint=fingerprint_of(digest),
                                     created=now), doc, now)
        await self._save(client, now)
        return client, secret

    async def update(self, name: str, doc: dict[str, Any], now: float) -> GatewayClient:
        client = self._editable(name)
        updated = apply(client, {k: v for k, v in doc.items() if k not in ("name", "key")}, now)
        await self._save(updated, now, old=client)
        return updated

    async def rotate(self, name: str, now: float) -> tuple[GatewayClient, str]:
        """A new key for the same identity (its usage and budget carry on); the old key stops working."""
        client = self._editable(name)
        secret = new_secret()
        digest = hash_secret(secret)
        rotated = replace(client, secret_hash=digest, fingerprint=fingerprint_of(digest))
        await self._save(rotated, now, old=client)
        return rotated, secret

    async def delete(self, name: str) -> GatewayClient:
        client = self._editable(name)
        await self.store.delete_gateway_client(name)
        self._drop(name)
        await self.counters.forget(name)
        return client

    def _editable(self, name: str) -> GatewayClient:
        client = self.get(name)
        if client.source == "config":
            raise Conflict(f"gateway key '{name}' comes from the config file: change it there and reload")
        return client

    async def _save(self, client: GatewayClient, now: float, old: GatewayClient | None = None) -> None:
        await self.store.save_gateway_client(client.name, orjson.dumps(client.stored()).decode(), now)
        if old is not None:
            self._drop(old.name)
        self._put(client)

    def _put(self, client: GatewayClient) -> None:
        self._verified.clear()  # a changed, rotated or new key: verify afresh
        self.by_name[client.name] = client
        self._by_hash[client.secret_hash] = client

    def _drop(self, name: str) -> None:
        self._verified.clear()
        client = self.by_name.pop(name, None)
        if client is not None:
            self._by_hash.pop(client.secret_hash, None)


def config_client(spec: dict[str, Any], now: float) -> GatewayClient:
    """A key from the config file: its secret is given there (often `os.environ/VAR`)."""
    doc = from_litellm(spec)
    secret = doc.pop("key", None)
    if not isinstance(secret, str) or len(secret) < 16:
        raise BadRequest("`key` must be the gateway key itself, at least 16 characters", param="key")
    name = check_name(doc.get("name"))
    digest = hash_secret(secret)
    return apply(GatewayClient(name=name, secret_hash=digest, fingerprint=fingerprint_of(digest),
                               source="config"), doc, now)
