"""The container's HEALTHCHECK: exit 0 when this machine's keymux answers its liveness route.

Stdlib only and no keymux imports, so a probe costs a bare interpreter start, not the gateway's import."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("KEYMUX_PORT") or os.environ.get("PORT") or "4000"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/liveliness", timeout=2) as resp:
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError) as e:
        print(f"keymux probe: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
