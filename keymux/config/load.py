"""Read a LiteLLM proxy config (`litellm_config.yaml`) unchanged into keymux's typed `Config`.

    load_config(path, env=None) -> Config        a YAML file (follows LiteLLM's `include:`)
    parse_config(doc, source=..., env=None)      an already-parsed document
    ConfigError                                  file, path, expected; never contains a secret

`os.environ/VAR` is resolved in string values; `environment_variables:` entries take precedence over the
process environment (LiteLLM writes them into os.environ at start). Unknown keys become warnings, wrong types
errors. Settings that belong to later work are accepted and listed in `Config.inactive`. `model_list` is read by
keymux/config/litellm.py, the settings sections by keymux/config/sections.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import yaml

from keymux.config.access import access_settings
from keymux.config.clients import virtual_keys
from keymux.config.deployment import DEFAULT_BASE_ENV, no_effect
from keymux.config.fields import ConfigError, Fields, describe, join_path, show_name, show_value
from keymux.config.litellm import Origin, parse_credentials, parse_model_list
from keymux.config.schema import Config, DeploymentConfig
from keymux.config.sections import (
    CACHE_TYPES,
    MASTER_KEY_ENV,
    ROUTING_STRATEGIES,
    general_settings,
    litellm_settings,
    model_aliases,
    router_settings,
    upload_limit,
)

_TOP_LEVEL = ("model_list", "router_settings", "litellm_settings", "general_settings", "environment_variables",
              "include", "aliases")
_TOP_LEVEL_UNSUPPORTED = frozenset(("guardrails", "mcp_servers", "files_settings",
                                    "assistant_settings", "finetune_settings", "search_tools",
                                    "vector_store_registry", "callback_settings", "pass_through_endpoints"))


# --- YAML ---------------------------------------------------------------------------------------

def _make_loader(base: type) -> type:
    class _Loader(base):  # type: ignore[misc, valid-type]
        """Safe YAML loader that remembers keys written twice in one mapping (YAML keeps only the last)."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.duplicates: list[tuple[object, int]] = []

        def construct_mapping(self, node, deep=False):  # noqa: ANN001
            seen = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    if key_node.value in seen:
                        self.duplicates.append((key_node.value, key_node.start_mark.line + 1))
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep)

    return _Loader


# libyaml when present (several times faster); its error marks carry no text snippets either way.
_Loader = _make_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _read_yaml(path: Path, label: str, warnings: list[str], *, included: bool = False) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(label, "", "an existing file", message="cannot read the config: no such file") from None
    except IsADirectoryError:
        raise ConfigError(label, "", "a file", message="cannot read the config: it is a directory") from None
    except PermissionError:
        raise ConfigError(label, "", "a readable file", message="cannot read the config: permission denied") from None
    except UnicodeDecodeError as e:
        raise ConfigError(label, "", "UTF-8 text", message=f"cannot read the config: not UTF-8 text "
                                                            f"(byte {e.start})") from None
    found: list[str] = []
    doc = parse_yaml(text, label, found)
    warnings += [f"{label}: {w}" for w in found] if included else found
    return doc


def parse_yaml(text: str, source: str = "<config>", warnings: list[str] | None = None) -> object:
    """Parse YAML text; syntax errors become `ConfigError` with line and column (never the offending text)."""
    loader = _Loader(text)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or "invalid YAML"
        if e.context:
            problem = f"{problem} ({e.context}"
            if e.context_mark is not None and e.problem_mark is not None and \
                    e.context_mark.line != e.problem_mark.line:
                problem += f" started at line {e.context_mark.line + 1}"
            problem += ")"
        if mark is None:
            raise ConfigError(source, "", "valid YAML", message=f"invalid YAML: {problem}") from None
        line, column = mark.line + 1, mark.column + 1
        raise ConfigError(source, f"line {line}, column {column}", "valid YAML",
                          message=f"invalid YAML: {problem}", line=line, column=column) from None
    except yaml.YAMLError as e:
        raise ConfigError(source, "", "valid YAML", message=f"invalid YAML ({type(e).__name__})") from None
    finally:
        loader.dispose()
    if warnings is not None:
        for key, line in loader.duplicates:
            warnings.append(f"line {line}: key {show_name(key)} is written twice in one mapping; "
                            "the last value is used")
    return doc


# --- public API ---------------------------------------------------------------------------------

def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Load a LiteLLM-style YAML config file. Raises `ConfigError`."""
    path = Path(path)
    label = str(path)
    yaml_warnings: list[str] = []
    doc = _read_yaml(path, label, yaml_warnings)
    sources = None
    if isinstance(doc, dict) and "include" in doc:
        doc, sources = _merge_includes(doc, path, label, yaml_warnings)
    config = _parse_all_missing(doc, label, os.environ if env is None else env, sources, yaml_warnings)
    return replace(config, source=path)


def parse_config(doc: object, *, source: str = "<config>", env: Mapping[str, str] | None = None) -> Config:
    """Build a `Config` from an already-parsed document (a dict as YAML would give). Raises `ConfigError`."""
    return _parse_all_missing(doc, source, os.environ if env is None else env, None, [])


_MAX_MISSING = 64


def _parse_all_missing(doc: object, source: str, env: Mapping[str, str], sources: _Sources | None,
                       early_warnings: list[str]) -> Config:
    """Parse; when environment variables are missing, name all of them in one error, not one per run:
    each missing one is stood in for by a harmless value and the parse goes on, to find the next."""
    try:
        return _parse(doc, source, env, sources, list(early_warnings))
    except ConfigError as e:
        if e.env_name is None:
            raise
        first = err = e
    missing: list[tuple[str, str]] = []
    stand_in = dict(env)
    while err.env_name is not None and len(missing) < _MAX_MISSING:
        missing.append((err.env_name, err.path))
        stand_in[err.env_name] = _stand_in(err.path)
        try:
            _parse(doc, source, stand_in, sources, list(early_warnings))
            break
        except ConfigError as e:
            err = e
    if len(missing) == 1:
        raise first
    names = "; ".join(f"{show_value(name)} (at {path})" for name, path in missing)
    raise ConfigError(first.file, first.path, first.expected,
                      message=f"{len(missing)} environment variables are not set: {names}") from None


def _stand_in(path: str) -> str:
    """A value of the right shape for the field at `path`, so that parsing can go on past it."""
    leaf = path.rpartition(".")[2]
    if "url" in leaf and "redis" in leaf:
        return "redis://unset.invalid"
    if "url" in leaf or "base" in leaf:
        return "http://unset.invalid"
    if leaf in ("rpm", "tpm", "rpd", "tpd", "max_parallel_requests", "port", "redis_port", "num_retries",
                "timeout", "order", "weight", "max_retries"):
        return "1"
    if leaf == "database_url":
        return "sqlite:///unset.db"
    return "unset-value"


# --- include: (LiteLLM: lists extend, other keys are replaced) -----------------------------------

# For each entry of the merged model_list: (file label or None for the main file, index in that file).
_Sources = list[tuple[str | None, int]]


def _merge_includes(doc: dict, path: Path, label: str, warnings: list[str]) -> tuple[dict, _Sources | None]:
    f = Fields(label, {})
    value = doc["include"]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list):
        raise f.error("include", "a file name or a list of file names", value)
    merged = {k: v for k, v in doc.items() if k != "include"}
    models = merged.get("model_list")
    sources: _Sources | None = [(None, i) for i in range(len(models))] if isinstance(models, list) else None
    for i, name in enumerate(names):
        item_path = f"include[{i}]" if isinstance(value, list) else "include"
        name = f.string(name, item_path, resolve=False, what="a file name")
        inc_path = Path(name) if Path(name).is_absolute() else path.parent / name
        inc_label = str(inc_path)
        if not inc_path.is_file():
            raise f.error(item_path, "an existing file", message=f"included file {inc_label} does not exist")
        inc = _read_yaml(inc_path, inc_label, warnings, included=True)
        if inc is None:
            continue
        if not isinstance(inc, dict):
            raise ConfigError(inc_label, "", "a mapping at the top level", describe(inc))
        for key, val in inc.items():
            extend = isinstance(val, list) and isinstance(merged.get(key), list)
            if key == "model_list":
                own: _Sources | None = [(inc_label, j) for j in range(len(val))] if isinstance(val, list) else None
                sources = [*(sources or []), *own] if extend and own is not None else own
            merged[key] = merged[key] + val if extend else val
    return merged, sources


# --- the document -------------------------------------------------------------------------------

def _parse(doc: object, source: str, process_env: Mapping[str, str], sources: _Sources | None,
           early_warnings: list[str]) -> Config:
    top = Fields(source, process_env)
    if doc is None:
        raise top.error("", "a mapping with model_list", message="the config is empty: it needs a model_list")
    if not isinstance(doc, dict):
        raise top.error("", "a mapping with model_list at the top level",
                        message=f"expected a mapping with model_list at the top level, got {describe(doc)}")
    env = _environment(doc.get("environment_variables"), top)
    f = Fields(source, env)
    f.warnings.extend(early_warnings)
    for key in doc:
        if key in _TOP_LEVEL:
            continue
        if key in _TOP_LEVEL_UNSUPPORTED:
            f.warn(f"{show_name(key)}: LiteLLM section not supported by keymux, ignored")
        else:
            f.unknown("", key)
    if "include" in doc:
        f.warn("include: only followed when the config is loaded from a file, ignored")

    main_models = doc.get("model_list")
    origins = None
    if sources is not None and isinstance(main_models, list) and len(sources) == len(main_models):
        files = {label: f.for_file(label) for label, _ in sources if label is not None}
        origins = [Origin(files[label] if label else f, i, pos) for pos, (label, i) in enumerate(sources)]
    models = parse_model_list(main_models, f, origins, parse_credentials(doc.get("credential_list"), f))
    groups = {d.group for d in models.deployments}

    rs = f.mapping(doc.get("router_settings"), "router_settings")
    ls = f.mapping(doc.get("litellm_settings"), "litellm_settings")
    gs = f.mapping(doc.get("general_settings"), "general_settings")
    model_ids = frozenset(i for d in models.deployments for i in (d.id, d.id.rpartition("#")[0] or d.id)
                    if not i.startswith(f"{d.group}/"))  # model_info.id as written, not generated ids
    router = router_settings(rs, ls, f, groups, models.skipped_groups, model_ids)
    if doc.get("aliases") is not None:  # keymux's own map: strict, merged over model_group_alias
        router = replace(router, model_group_alias={**router.model_group_alias,
                                                    **model_aliases(doc["aliases"], "aliases", f, groups)})
    drop_params, verbose, cache = litellm_settings(ls, f, router.redis)
    master_key, max_request_bytes, database_url, metrics_auth, max_upstream, server = general_settings(gs, f)
    deployments = _default_bases(models.deployments, f.env)
    unused: dict[str, list[str]] = {}  # one warning per setting, naming every deployment (key) it is on
    for d in deployments:
        for text in no_effect(d, router):
            unused.setdefault(text, []).append(show_value(d.id))
    for text, ids in unused.items():
        f.warn(f"deployment{'s' if len(ids) > 1 else ''} {', '.join(ids)}: {text}")
    return Config(deployments=deployments, router=router, drop_params=drop_params,
                  master_key=master_key, verbose=verbose, max_request_bytes=max_request_bytes, cache=cache,
                  database_url=database_url, metrics_auth=metrics_auth, access=access_settings(gs, f),
                  max_upstream_response_bytes=max_upstream, server=server, max_upload_bytes=upload_limit(gs, f),
                  virtual_keys=virtual_keys(gs, f),
                  inactive=tuple(f.inactive), warnings=tuple(f.warnings), source=None)


def _default_bases(deployments: list[DeploymentConfig], env: Mapping[str, str]) -> tuple[DeploymentConfig, ...]:
    bases = {provider: env.get(var) for provider, var in DEFAULT_BASE_ENV.items()}
    return tuple(replace(d, api_base=bases[d.provider]) if d.api_base is None and bases.get(d.provider) else d
                 for d in deployments)


def _environment(value: object, f: Fields) -> dict[str, str]:
    """The process environment overlaid with `environment_variables:` (values may be os.environ/ refs)."""
    env = dict(f.env)
    section = f.mapping(value, "environment_variables", what="a mapping of variable name to value")
    for name, val in section.items():
        path = join_path("environment_variables", name)
        if not isinstance(name, str) or not name:
            raise f.error(path, "a variable name (a string)", name)
        if isinstance(val, (bool, int, float)):
            val = str(val)  # LiteLLM does os.environ[k] = str(v)
        elif isinstance(val, str):
            val = f.string(val, path, secret=True, empty_ok=True)
        else:
            raise f.error(path, "a string, number or boolean", val, secret=True)
        env[name] = val
    return env


__all__ = ["CACHE_TYPES", "MASTER_KEY_ENV", "ROUTING_STRATEGIES", "ConfigError", "load_config", "parse_config",
           "parse_yaml"]
