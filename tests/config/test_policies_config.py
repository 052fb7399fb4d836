"""router_settings.retry_policy / model_group_retry_policy / allowed_fails_policy: read by LiteLLM's names,
reported by `keymux check` as honoured, unknown classes and classes keymux's verdicts decide warned about."""

from __future__ import annotations

import pytest

from keymux.config.load import ConfigError, parse_config
from keymux.config.report import describe

GEMINI = {"model": "gemini/gemini-2.5-flash", "api_key": "AIzaSyPolicyTestsKey0123456789abcdefghij"}


def doc(**router: object) -> dict:
    return {"model_list": [{"model_name": "chat", "litellm_params": GEMINI}], "router_settings": router}


def test_policies_are_read_by_class_and_reported_as_honoured() -> None:
    config = parse_config(doc(retry_policy={"RateLimitErrorRetries": 4, "BadRequestErrorRetries": 1,
                                            "TimeoutErrorRetries": None},
                              model_group_retry_policy={"chat": {"TimeoutErrorRetries": 0}},
                              allowed_fails_policy={"InternalServerErrorAllowedFails": 1}), env={})
    router = config.router
    assert router.retry_policy == {"RateLimitError": 4, "BadRequestError": 1}
    assert router.model_group_retry_policy == {"chat": {"TimeoutError": 0}}
    assert router.allowed_fails_policy == {"InternalServerError": 1}
    text = describe(config)
    assert "retry policy       RateLimitErrorRetries 4, BadRequestErrorRetries 1 (honoured)" in text
    assert "    chat             TimeoutErrorRetries 0 (instead of retry policy)" in text
    assert "fails policy       InternalServerErrorAllowedFails 1 (honoured)" in text
    assert not any("retry_policy" in w or "allowed_fails_policy" in w for w in config.warnings)


def test_unknown_classes_groups_and_classes_keymux_decides_itself_warn() -> None:
    config = parse_config(doc(retry_policy={"TeapotErrorRetries": 1},
                              model_group_retry_policy={"nope": {"RateLimitErrorRetries": 1}},
                              allowed_fails_policy={"AuthenticationErrorAllowedFails": 1000,
                                                    "BadRequestErrorAllowedFails": 5}), env={})
    warnings = "\n".join(config.warnings)
    assert "router_settings.retry_policy.TeapotErrorRetries: unknown error class, ignored" in warnings
    assert "router_settings.model_group_retry_policy.nope: 'nope' is not a model group" in warnings
    assert ("router_settings.allowed_fails_policy.AuthenticationErrorAllowedFails: accepted, no effect in keymux "
            "(an invalid key is disabled at its first answer)") in warnings
    assert "BadRequestErrorAllowedFails: accepted, no effect in keymux" in warnings
    assert config.router.allowed_fails_policy == {} and config.router.retry_policy == {}


@pytest.mark.parametrize(("router", "path"), [
    ({"retry_policy": {"RateLimitErrorRetries": -1}}, "router_settings.retry_policy.RateLimitErrorRetries"),
    ({"retry_policy": [1]}, "router_settings.retry_policy"),
    ({"allowed_fails_policy": {"TimeoutErrorAllowedFails": "many"}},
     "router_settings.allowed_fails_policy.TimeoutErrorAllowedFails"),
])
def test_wrong_values_are_refused_with_their_path(router: dict, path: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(doc(**router), source="cfg.yaml", env={})
    assert err.value.path == path
