"""The one deployment builder: every per-deployment field means the same from the YAML config, from the admin
API (`POST /admin/keys`) and from a key stored at run time and read back after a restart."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from keymux.config.deployment import FIELDS, MODEL_INFO, PARAMS, from_admin, from_record, to_record
from keymux.config.load import ConfigError, parse_config
from keymux.config.schema import DeploymentConfig
from keymux.errors import BadRequest

KEY = "AIzaSyBuilderTestsKey0123456789abcdefgh"
MODEL = "gemini/gemini-2.5-flash"

# One non-default value per field of the table, and what the deployment then holds.
SAMPLES: dict[str, tuple[Any, Any]] = {
    "rpm": (7, 7), "tpm": (9000, 9000), "rpd": (250, 250), "tpd": (10**6, 10**6),
    "max_parallel_requests": (3, 3),
    "api_base": ("http://127.0.0.1:9/v1beta/", "http://127.0.0.1:9/v1beta"),
    "project": (123456789012, "123456789012"),
    "weight": (2, 2.0), "order": (4, 4), "timeout": (12, 12.0), "stream_timeout": (2.5, 2.5),
    "max_retries": (1, 1), "input_cost_per_token": (3e-7, 3e-7), "output_cost_per_token": (1e-6, 1e-6),
    "tier": ("paid", "paid"), "id": ("my-key", "my-key"),
    "vertex_project": ("my-proj-1", "my-proj-1"), "vertex_location": ("europe-west4", "europe-west4"),
}


def attr_of(d: DeploymentConfig, name: str) -> Any:
    fld = next(f for f in FIELDS if f.name == name)
    return getattr(d.limits if fld.limit else d, fld.attr)


def from_yaml(name: str, value: Any) -> DeploymentConfig:
    fld = next(f for f in FIELDS if name in f.names)
    entry: dict[str, Any] = {"model_name": "g", "litellm_params": {"model": MODEL, "api_key": KEY}}
    if PARAMS in fld.places:
        entry["litellm_params"][name] = value
    else:
        assert fld.places == (MODEL_INFO,)
        entry["model_info"] = {name: value}
    config = parse_config({"model_list": [entry]}, source="t.yaml", env={})
    assert not [w for w in config.warnings if name in w]  # taken, not warned about
    return config.deployments[0]


def admin(spec: dict[str, Any], existing: tuple[DeploymentConfig, ...] = ()) -> DeploymentConfig:
    return from_admin({"group": "g", "api_key": KEY, "model": MODEL, **spec}, existing, {})


def test_every_field_of_the_table_has_a_sample_here() -> None:
    assert {f.name for f in FIELDS} == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_field_means_the_same_from_yaml_admin_and_a_stored_key(name: str) -> None:
    given, held = SAMPLES[name]
    yaml_d, admin_d = from_yaml(name, given), admin({name: given})
    assert attr_of(yaml_d, name) == held and attr_of(admin_d, name) == held
    for d in (yaml_d, admin_d):
        assert from_record(to_record(d, 0.0)) == d  # a restart keeps it


def test_a_stored_key_keeps_every_field_at_once() -> None:
    d = admin({name: given for name, (given, _) in SAMPLES.items()})
    assert all(attr_of(d, name) == held for name, (_, held) in SAMPLES.items())
    back = from_record(to_record(d, 1.0))
    assert back == d and back.api_key == KEY


def test_a_record_written_before_max_retries_and_stream_timeout_reads_back_with_their_defaults() -> None:
    old = {"id": "g/runtime:gem:1", "grp": "g", "fingerprint": "gem:1", "provider": "gemini",
           "model": "gemini-2.5-flash", "api_key": KEY, "api_base": None, "project": None, "created": 0.0,
           "params": orjson.dumps({"rpm": 5, "tpm": None, "rpd": None, "tpd": None, "max_parallel": 2,
                                   "weight": 1.0, "order": None, "timeout": 30.0, "tier": None,
                                   "input_cost_per_token": None, "output_cost_per_token": None}).decode()}
    d = from_record(old)
    assert (d.limits.rpm, d.limits.max_parallel, d.timeout) == (5, 2, 30.0)
    assert (d.max_retries, d.stream_timeout, d.weight) == (None, None, 1.0)


def test_a_broken_record_is_a_value_error_naming_the_field() -> None:
    d = admin({})
    record = to_record(d, 0.0)
    record["params"] = orjson.dumps({**orjson.loads(record["params"]), "max_retries": "many"}).decode()
    with pytest.raises(ValueError, match="max_retries: expected a non-negative integer"):
        from_record(record)


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("rpm", "five", "a non-negative integer"),
    ("max_retries", -1, "a non-negative integer"),
    ("num_retries", 1.5, "a non-negative integer"),
    ("timeout", 0, "a positive number"),
    ("stream_timeout", "fast", "a positive number"),
    ("weight", -2, "a non-negative number"),
    ("api_base", "ftp://x", "a URL starting with http:// or https://"),
    ("tier", "gold", "one of: free, paid"),
])
def test_a_wrong_value_is_refused_alike_by_yaml_and_admin_with_its_path(name: str, value: Any,
                                                                        expected: str) -> None:
    with pytest.raises(ConfigError) as yaml_err:
        place = {"model_info": {name: value}} if name == "tier" else {}
        params = {} if name == "tier" else {name: value}
        parse_config({"model_list": [{"model_name": "g", "litellm_params": {"model": MODEL, "api_key": KEY, **params},
                                      **place}]}, source="t.yaml", env={})
    assert yaml_err.value.path.endswith(f".{name}") and yaml_err.value.expected == expected
    assert str(yaml_err.value).startswith("t.yaml: model_list[0].")
    with pytest.raises(BadRequest) as admin_err:
        admin({name: value})
    assert admin_err.value.param == name and f"expected {expected}" in admin_err.value.message


def test_num_retries_is_max_retries_on_every_road() -> None:
    assert from_yaml("num_retries", 1).max_retries == 1
    assert admin({"num_retries": 1}).max_retries == 1
    assert admin({"num_retries": 2, "max_retries": 0}).max_retries == 0


def test_the_admin_api_never_reads_the_environment() -> None:
    with pytest.raises(BadRequest) as err:
        from_admin({"group": "g", "api_key": KEY, "model": MODEL, "api_base": "os.environ/HOME"}, (),
                   {"HOME": "http://example.com"})
    assert err.value.param == "api_base"
    with pytest.raises(BadRequest) as err:
        admin({"rpm": "os.environ/RPM"})
    assert err.value.param == "rpm"


def test_admin_inherits_the_groups_limits_unless_given_or_nulled() -> None:
    first = admin({"rpm": 5, "rpd": 100, "max_retries": 2})
    other = "AIzaSyBuilderTestsKeyTwo0123456789abcdef"
    joined = from_admin({"group": "g", "api_key": other, "rpd": None, "tpm": 50}, (first,), {})
    assert (joined.model, joined.limits.rpm, joined.limits.rpd, joined.limits.tpm) == ("gemini-2.5-flash", 5, None, 50)
    assert joined.max_retries is None  # only limits come from the group, as documented


@pytest.mark.parametrize("name", ["rmp", "stream"])
def test_admin_refuses_a_field_it_would_not_act_on(name: str) -> None:
    with pytest.raises(BadRequest) as err:
        admin({name: 1})
    assert err.value.param == name and "unknown field" in err.value.message


def test_admin_refuses_an_api_version_outside_azure() -> None:
    with pytest.raises(BadRequest) as err:
        admin({"api_version": "2024-10-21"})
    assert err.value.param == "api_version" and "azure/" in err.value.message


def test_yaml_warns_about_a_litellm_field_keymux_does_not_act_on() -> None:
    config = parse_config({"model_list": [{"model_name": "g", "litellm_params": {
        "model": MODEL, "api_key": KEY, "api_version": "2024-01-01", "stream_timeout": 5}}]}, source="t.yaml", env={})
    assert config.warnings == ("model_list[0].litellm_params.api_version: LiteLLM setting not supported by keymux, "
                               "ignored",)
    assert config.deployments[0].stream_timeout == 5.0


@pytest.mark.parametrize(("params", "router", "warning"), [
    ({"weight": 3}, {"routing_strategy": "round-robin"},
     "deployment g/0: weight 3: accepted, no effect with routing_strategy round-robin (only simple-shuffle weighs keys)"),
    ({"max_retries": 2}, {"num_retries": 2},
     "deployment g/0: max_retries 2: accepted, no effect (it only lowers router_settings.num_retries, which is 2)"),
])
def test_a_field_this_router_ignores_is_warned_about(params: dict[str, Any], router: dict[str, Any],
                                                     warning: str) -> None:
    doc = {"model_list": [{"model_name": "g", "litellm_params": {"model": MODEL, "api_key": KEY, **params}}],
           "router_settings": router}
    assert parse_config(doc, source="t.yaml", env={}).warnings == (warning,)
    doc["router_settings"] = {}
    if "weight" in params:  # the default strategy weighs keys
        assert parse_config(doc, source="t.yaml", env={}).warnings == ()
