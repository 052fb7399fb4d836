"""Gateway key secrets: made here, shown once, kept only as a SHA-256 hash.

A secret is 32 random bytes (URL-safe), so a plain SHA-256 is enough (no password stretching needed): nobody
can guess one, and the hash is what the store and the lookups hold. Lookup is by hash (timing of a dict
lookup reveals at most something about a hash, never about a secret), then a constant-time comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "sk-km-"  # "sk-" so tools that expect an OpenAI-style key accept it


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def fingerprint_of(secret_hash: str) -> str:
    """The only form a gateway key takes in logs, the ledger, the admin API and the UI."""
    return f"key:{secret_hash[:8]}"
