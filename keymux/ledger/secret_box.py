"""Encryption at rest for the API keys added at run time (the `runtime_keys.api_key` column).

Fernet (cryptography: AES-128-CBC with HMAC-SHA256, authenticated) under one secret, from
    KEYMUX_SECRET_KEY    any random string of at least 32 characters (derived with HKDF-SHA256), or
    a key file           generated on first use beside the SQLite database (`keymux.db.key`, mode 0600),
                         or beside the config file when the ledger is PostgreSQL.
Set KEYMUX_SECRET_KEY when several machines share one database: each would generate its own file.
A ledger with neither a file nor the variable (in memory) keeps a key in memory, as its rows are.

Stored values read `fernet:<token>`; anything else is a row from before encryption (Ledger encrypts it).
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from keymux.ledger.store import LedgerUnavailable

if TYPE_CHECKING:  # imported when first needed: most gateways never add a key at run time
    from cryptography.fernet import Fernet

log = logging.getLogger("keymux.ledger")

ENV = "KEYMUX_SECRET_KEY"
PREFIX = "fernet:"
MIN_SECRET = 32


class SecretUnavailable(LedgerUnavailable):
    """No secret, or not the one a value was stored with. Never holds the secret or the value."""


def _derive(secret: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"keymux runtime keys v1")
    return base64.urlsafe_b64encode(kdf.derive(secret.encode()))


class SecretBox:
    def __init__(self, key_file: Path | None, env: Mapping[str, str] | None = None) -> None:
        self.key_file = key_file
        self._env = env
        self._fernet: Fernet | None = None

    def _where(self) -> str:
        if self.key_file is None:
            return f"{ENV} is not set"
        return f"{ENV} is not set and {self.key_file} does not exist"

    def _load(self, create: bool) -> Fernet:
        if self._fernet is not None:
            return self._fernet
        from cryptography.fernet import Fernet

        env = os.environ if self._env is None else self._env
        secret = env.get(ENV)
        if secret:
            if len(secret) < MIN_SECRET:
                raise SecretUnavailable(f"{ENV} is too short: use at least {MIN_SECRET} random characters "
                                        "(e.g. `openssl rand -base64 32`)")
            self._fernet = Fernet(_derive(secret))
        elif self.key_file is None:
            self._fernet = Fernet(Fernet.generate_key())  # an in-memory ledger: its rows die with it too
        else:
            self._fernet = Fernet(self._read_or_make(self.key_file, create))
        return self._fernet

    def _read_or_make(self, path: Path, create: bool) -> bytes:
        from cryptography.fernet import Fernet

        try:
            return self._read(path)
        except FileNotFoundError:
            if not create:
                raise SecretUnavailable(self._where()) from None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker made it a moment ago
            return self._read(path)
        except OSError as e:
            raise SecretUnavailable(f"cannot create the key file {path}: {e.strerror}") from None
        key = Fernet.generate_key()
        with os.fdopen(fd, "wb") as f:
            f.write(key + b"\n")
        log.info("generated %s to encrypt keys added at run time (keep it with the database, or set %s)",
                 path, ENV)
        return key

    @staticmethod
    def _read(path: Path) -> bytes:
        from cryptography.fernet import Fernet

        try:
            key = path.read_bytes().strip()
            Fernet(key)
        except ValueError:
            raise SecretUnavailable(f"{path} does not hold a key (44 characters of url-safe base64)") from None
        except PermissionError as e:
            raise SecretUnavailable(f"cannot read {path}: {e.strerror}") from None
        return key

    def encrypt(self, value: str) -> str:
        return PREFIX + self._load(create=True).encrypt(value.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        from cryptography.fernet import InvalidToken

        fernet = self._load(create=False)
        try:
            return fernet.decrypt(stored.removeprefix(PREFIX).encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            env = os.environ if self._env is None else self._env
            source = ENV if env.get(ENV) else str(self.key_file or "this process's in-memory key")
            raise SecretUnavailable(f"cannot decrypt it with {source}: not the secret it was stored with") from None

    @staticmethod
    def encrypted(stored: str) -> bool:
        return stored.startswith(PREFIX)
