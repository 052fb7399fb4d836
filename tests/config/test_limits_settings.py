"""general_settings that bound what one client connection and one upstream answer may take."""

from __future__ import annotations

import pytest

from keymux.config.fields import ConfigError
from keymux.config.schema import ServerLimits

from .test_config_load import one, parse


def test_defaults_bound_upstream_answers_and_client_connections() -> None:
    config = parse(one())
    assert config.max_upstream_response_bytes == 64 * 1024 * 1024
    assert config.server == ServerLimits(header_timeout=10.0, body_timeout=60.0, keepalive_timeout=30.0,
                                         max_connections=None)


def test_every_limit_can_be_set() -> None:
    doc = one()
    doc["general_settings"] = {"max_upstream_response_mb": 8, "request_header_timeout": 2.5,
                               "request_body_timeout": 20, "keepalive_timeout": 5, "max_connections": 300}
    config = parse(doc)
    assert config.max_upstream_response_bytes == 8 * 1024 * 1024
    assert config.server == ServerLimits(2.5, 20.0, 5.0, 300)
    assert config.warnings == ()


@pytest.mark.parametrize("key, value", [("max_upstream_response_mb", 0), ("request_header_timeout", -1),
                                        ("max_connections", 0), ("keepalive_timeout", "soon")])
def test_a_wrong_limit_names_its_path(key: str, value: object) -> None:
    doc = one()
    doc["general_settings"] = {key: value}
    with pytest.raises(ConfigError, match=f"general_settings.{key}"):
        parse(doc)
