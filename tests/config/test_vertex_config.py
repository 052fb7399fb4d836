"""vertex_ai/ deployments on the three roads of the deployment builder (YAML, admin API, stored keys):
where the service account, project and region come from, what the key identity and quota bucket are,
and what a broken entry is told."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from keymux.config.deployment import from_admin, from_record, to_record
from keymux.config.load import ConfigError, parse_config
from keymux.config.schema import DeploymentConfig
from keymux.emulator.google_token import service_account
from keymux.errors import BadRequest

GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"
SA_A, _ = service_account("proj-a", GOOGLE_TOKEN, "alice")
SA_B, _ = service_account("proj-b", GOOGLE_TOKEN, "bob")
PREFIX_A = "https://us-central1-aiplatform.googleapis.com/v1/projects/proj-a/locations/us-central1/publishers/google"


def entry(group: str = "g", **params: Any) -> dict[str, Any]:
    return {"model_name": group, "litellm_params": {"model": "vertex_ai/gemini-2.5-flash", **params}}


def parse(*entries: dict[str, Any], env: dict[str, str] | None = None) -> tuple[DeploymentConfig, ...]:
    return parse_config({"model_list": list(entries)}, source="t.yaml", env=env or {}).deployments


def fail(*entries: dict[str, Any], env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse(*entries, env=env)
    return err.value


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(SA_A, indent=2))
    return str(path)


def test_a_key_file_path_its_json_text_and_a_yaml_mapping_are_one_deployment(key_file: str) -> None:
    env = {"SA_PATH": key_file, "SA_JSON": json.dumps(SA_A)}
    ds = [parse(entry(vertex_credentials=value), env=env)[0]
          for value in (key_file, json.dumps(SA_A), SA_A, "os.environ/SA_PATH", "os.environ/SA_JSON")]
    assert {(d.provider, d.model, d.fingerprint, d.api_base, d.vertex_project, d.vertex_location) for d in ds} == {
        ("vertex_ai", "gemini-2.5-flash", ds[0].fingerprint, PREFIX_A, "proj-a", "us-central1")}
    assert ds[0].fingerprint.startswith("vtx:") and all(orjson.loads(d.api_key) == SA_A for d in ds)
    assert ds[0].bucket == "project:vertex:proj-a/us-central1"
    assert "PRIVATE" not in repr(ds[0]) and SA_A["client_email"] not in repr(ds[0])


def test_the_environment_fills_in_what_the_entry_leaves_out_as_litellm_does(key_file: str) -> None:
    d, = parse(entry(), env={"GOOGLE_APPLICATION_CREDENTIALS": key_file, "VERTEXAI_PROJECT": "other-proj",
                             "VERTEXAI_LOCATION": "europe-west4"})
    assert (d.vertex_project, d.vertex_location) == ("other-proj", "europe-west4")
    assert d.api_base == ("https://europe-west4-aiplatform.googleapis.com/v1/projects/other-proj/locations/"
                          "europe-west4/publishers/google")
    given, = parse(entry(vertex_project="p1", vertex_location="asia-northeast1"),
                   env={"GOOGLE_APPLICATION_CREDENTIALS": key_file, "VERTEXAI_PROJECT": "other-proj",
                        "VERTEXAI_LOCATION": "europe-west4"})
    assert (given.vertex_project, given.vertex_location) == ("p1", "asia-northeast1")  # the entry wins


def test_litellm_spellings_global_region_beta_route_and_api_base() -> None:
    d, = parse(entry(model="vertex_ai_beta/gemini-2.5-pro", vertex_credentials=SA_A, vertex_ai_project="p2",
                     vertex_ai_location="global"))
    assert (d.provider, d.model) == ("vertex_ai", "gemini-2.5-pro")
    assert d.api_base == "https://aiplatform.googleapis.com/v1/projects/p2/locations/global/publishers/google"
    local, = parse(entry(vertex_credentials=SA_A, api_base="http://127.0.0.1:9/"))
    assert local.api_base == "http://127.0.0.1:9/v1/projects/proj-a/locations/us-central1/publishers/google"
    bare, = parse({"model_name": "g", "litellm_params": {"model": "gemini-1.5-pro", "vertex_credentials": SA_A}})
    assert (bare.provider, bare.model) == ("vertex_ai", "gemini-1.5-pro")  # LiteLLM's bare model on Vertex


def test_projects_regions_and_accounts_are_separate_keys_and_a_project_is_one_bucket() -> None:
    ds = parse(entry(vertex_credentials=SA_A), entry(vertex_credentials=SA_B),
               entry(vertex_credentials=SA_A, vertex_location="europe-west4"),
               entry(vertex_credentials=SA_B, vertex_project="proj-a"))
    assert len({d.fingerprint for d in ds}) == 4  # (account, project, region) is the key identity
    assert [d.bucket for d in ds] == ["project:vertex:proj-a/us-central1", "project:vertex:proj-b/us-central1",
                                      "project:vertex:proj-a/europe-west4", "project:vertex:proj-a/us-central1"]


def test_a_non_gemini_model_on_vertex_is_skipped_with_a_warning_naming_it() -> None:
    config = parse_config({"model_list": [entry(vertex_credentials=SA_A),
                                          entry("claude", model="vertex_ai/claude-haiku-4-5@20251001",
                                                vertex_credentials=SA_A)]}, source="t.yaml", env={})
    assert [d.group for d in config.deployments] == ["g"]
    assert config.warnings == ("model_list[1].litellm_params.model: 'vertex_ai/claude-haiku-4-5@20251001' is not a "
                               "Gemini model: keymux serves only Gemini models on Vertex AI, deployment skipped",)


def test_an_api_key_on_a_vertex_entry_is_warned_about() -> None:
    config = parse_config({"model_list": [entry(vertex_credentials=SA_A, api_key="AQ.express-mode-key-0001")]},
                          source="t.yaml", env={})
    assert any("Vertex API keys (express mode) are not supported" in w for w in config.warnings)
    assert "express-mode" not in " ".join(config.warnings)


@pytest.mark.parametrize("params,env,path,message", [
    ({}, {}, "vertex_credentials", "missing: vertex_ai/ models need vertex_credentials"),
    ({"vertex_credentials": "/nonexistent/sa.json"}, {}, "vertex_credentials",
     "cannot read the service-account key file (No such file or directory)"),
    ({"vertex_credentials": "{not json"}, {}, "vertex_credentials", "unusable service account: not JSON"),
    ({"vertex_credentials": {**SA_A, "type": "authorized_user"}}, {}, "vertex_credentials",
     "only service-account keys"),
    ({"vertex_credentials": {k: v for k, v in SA_A.items() if k != "project_id"}}, {}, "vertex_project",
     "missing: set vertex_project (or VERTEXAI_PROJECT)"),
    ({"vertex_credentials": SA_A, "vertex_location": "Europe West"}, {}, "vertex_location",
     "expected a Vertex AI region like us-central1, or global"),
    ({"vertex_credentials": "os.environ/SA_PATH"}, {}, "vertex_credentials", "environment variable SA_PATH is not set"),
])
def test_a_broken_vertex_entry_is_refused_with_its_path_and_no_secret(params: dict, env: dict, path: str,
                                                                      message: str) -> None:
    err = fail(entry(**params), env=env)
    assert err.path == f"model_list[0].litellm_params.{path}" and message in err.message
    assert "PRIVATE KEY" not in str(err) and "alice@" not in str(err)


def test_a_bad_private_key_is_refused_without_quoting_it() -> None:
    err = fail(entry(vertex_credentials={**SA_A, "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"}))
    assert "private_key is not a PEM RSA private key" in err.message and "AAAA" not in str(err)


# -- the admin API and stored keys -----------------------------------------------------------------

def admin(spec: dict[str, Any], existing: tuple[DeploymentConfig, ...] = (),
          env: dict[str, str] | None = None) -> DeploymentConfig:
    return from_admin({"group": "g", **spec}, existing, env or {})


def test_the_admin_api_builds_the_same_deployment_and_a_restart_keeps_it() -> None:
    yaml_d, = parse(entry(vertex_credentials=SA_A, vertex_location="europe-west4", rpm=60))
    admin_d = admin({"model": "vertex_ai/gemini-2.5-flash", "vertex_credentials": SA_A,
                     "vertex_location": "europe-west4", "rpm": 60})
    same = ("provider", "model", "fingerprint", "api_base", "project", "vertex_project", "vertex_location", "limits")
    assert all(getattr(admin_d, a) == getattr(yaml_d, a) for a in same)
    for d in (yaml_d, admin_d):
        back = from_record(to_record(d, 0.0))
        assert back == d and orjson.loads(back.api_key) == SA_A  # the account is the stored secret


def test_a_key_joining_a_vertex_group_keeps_its_host_and_region() -> None:
    first, = parse(entry(vertex_credentials=SA_A, vertex_location="europe-west4", api_base="http://127.0.0.1:9"))
    joined = admin({"vertex_credentials": json.dumps(SA_B)}, (first,))
    assert (joined.provider, joined.model, joined.vertex_project, joined.vertex_location) == (
        "vertex_ai", "gemini-2.5-flash", "proj-b", "europe-west4")
    assert joined.api_base == "http://127.0.0.1:9/v1/projects/proj-b/locations/europe-west4/publishers/google"
    assert joined.fingerprint != first.fingerprint


@pytest.mark.parametrize("spec,param,message", [
    ({"api_key": "AQ.some-key"}, "api_key", "give `vertex_credentials`"),
    ({}, "vertex_credentials", "missing: vertex_ai/ models need vertex_credentials (the service-account JSON)"),
    ({"vertex_credentials": "/etc/sa.json"}, "vertex_credentials", "the service-account JSON itself"),
    ({"vertex_credentials": {**SA_A, "token_uri": "http://10.0.0.1/token"}}, "vertex_credentials",
     "token_uri is neither Google's"),
])
def test_the_admin_api_refuses_what_it_cannot_serve_with_the_field(spec: dict, param: str, message: str) -> None:
    spec = {"model": "vertex_ai/gemini-2.5-flash", **spec}
    with pytest.raises(BadRequest) as err:
        admin(spec, env={"GOOGLE_APPLICATION_CREDENTIALS": "/etc/sa.json"})
    assert err.value.param == param and message in err.value.message


def test_the_readmes_vertex_example_is_accepted_as_written(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", readme[readme.index("### Gemini on Vertex AI"):], re.S)
    assert example is not None
    (tmp_path / "sa-prod.json").write_text(json.dumps(SA_A))
    text = example.group(1).replace("/etc/keymux/sa-prod.json", str(tmp_path / "sa-prod.json"))
    import yaml

    config = parse_config(yaml.safe_load(text), source="README.md", env={"SA_BATCH_JSON": json.dumps(SA_B)})
    assert [(d.vertex_project, d.vertex_location) for d in config.deployments] == [
        ("my-prod-project", "us-central1"), ("my-batch-project", "europe-west4")]
    assert config.warnings == ()
