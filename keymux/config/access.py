"""Who may reach the admin API and /metrics, and which hosts admin input may point keys at.

    general_settings:
      allow_unauthenticated_admin: loopback   # without master_key: admin + metrics for 127.0.0.1/::1 only
      trusted_proxies: [127.0.0.1/32, 10.0.0.0/8]   # X-Forwarded-For is believed only from these peers
      admin_api_base_allowlist: [https://eu-proxy.example/v1beta]   # POST /admin/keys may name these

Defaults are closed: with no master key and no `allow_unauthenticated_admin`, admin and metrics answer 403;
no proxy is trusted; an `api_base` in a POST /admin/keys body must be one already in the config file or listed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from keymux.config.fields import Fields, join_path

ACCESS_KEYS = frozenset(("allow_unauthenticated_admin", "trusted_proxies", "admin_api_base_allowlist"))
UNAUTHENTICATED_CHOICES = ("off", "loopback")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AccessSettings:
    allow_unauthenticated_admin: str = "off"  # "off" | "loopback"
    trusted_proxies: tuple[Network, ...] = ()
    admin_api_base_allowlist: tuple[str, ...] = ()  # normalised with `normal_base`


def normal_base(url: str) -> str:
    """One spelling per base URL: scheme and host lower-cased, no trailing slash."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return url.strip().rstrip("/")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}".rstrip("/")


def access_settings(gs: dict[Any, Any], f: Fields) -> AccessSettings:
    mode = "off"
    proxies: list[Network] = []
    bases: list[str] = []
    if "allow_unauthenticated_admin" in gs:
        val = gs["allow_unauthenticated_admin"]
        path = join_path("general_settings", "allow_unauthenticated_admin")
        mode = "off" if val is False or val is None else f.choice(val, path, UNAUTHENTICATED_CHOICES)
    if gs.get("trusted_proxies") is not None:
        path = join_path("general_settings", "trusted_proxies")
        for i, text in enumerate(f.string_list(gs["trusted_proxies"], path, what="a list of IPs or CIDRs")):
            try:
                proxies.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise f.error(f"{path}[{i}]", "an IP address or CIDR such as 10.0.0.0/8", text) from None
    if gs.get("admin_api_base_allowlist") is not None:
        path = join_path("general_settings", "admin_api_base_allowlist")
        for i, text in enumerate(f.string_list(gs["admin_api_base_allowlist"], path, what="a list of URLs")):
            if not text.strip().lower().startswith(("http://", "https://")):
                raise f.error(f"{path}[{i}]", "an http:// or https:// URL", text)
            bases.append(normal_base(text))
    return AccessSettings(mode, tuple(proxies), tuple(bases))
