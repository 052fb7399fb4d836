"""Calls to a running keymux's admin API, for the CLIs (`keymux keys`, `keymux usage`, `keymux clients`).

Standard library only (urllib), so the commands start fast. An error comes back as AdminError with the
server's own message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:4000"


class AdminError(Exception):
    pass


def call(url: str, method: str, path: str, key: str | None, body: Any = None, timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if data is not None else {}
    if key:
        headers["authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = e.reason
        raise AdminError(f"{e.code}: {message}") from None
    except (urllib.error.URLError, OSError) as e:
        raise AdminError(f"cannot reach keymux at {url}: {getattr(e, 'reason', e)}") from None
