"""describe(config): the report `keymux check` prints."""

from __future__ import annotations

from keymux.config.load import load_config, parse_config
from keymux.config.report import describe, limits_text, safe_url
from keymux.config.schema import Limits


def lines_after(text: str, header: str) -> list[str]:
    """The lines of a block, from its header up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    block = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line)
    return block


def test_report_of_the_litellm_fixture(litellm_config_path, litellm_env):
    config = load_config(litellm_config_path, env=litellm_env)
    text = describe(config)

    assert text.startswith(f"keymux configuration: {litellm_config_path}\n3 model groups, 7 deployments\n")
    chat = lines_after(text, "gemini-pro-chat")
    assert chat[0] == "gemini-pro-chat  (3 deployments)"
    assert chat[1].split() == ["id", "provider", "model", "key", "bucket", "limits"]
    for line, d in zip(chat[2:], config.groups()["gemini-pro-chat"], strict=True):
        assert line.split() == [d.id, "gemini", "gemini-2.5-pro", d.fingerprint, "own", "key", "rpm", "5"]
    # columns are aligned: every row's fingerprint starts where the header's "key" does
    key_col = chat[1].index("key")
    assert all(line[key_col:].startswith("gem:") for line in chat[2:])
    image = lines_after(text, "gemini-image")
    assert image[0] == "gemini-image  (2 deployments)"
    assert all("gemini-2.5-flash-image" in line and "rpm 10" in line for line in image[2:])
    assert "not declared" in lines_after(text, "gemini-fix")[2]

    router = lines_after(text, "Router")
    assert "  strategy           simple-shuffle" in router
    assert any(line.split()[:2] == ["retries", "3"] for line in router)
    assert any(line.split()[:3] == ["timeout", "60", "s"] for line in router)
    assert any(line.split()[:4] == ["queue", "timeout", "30", "s"] for line in router)
    assert any(line.split()[:4] == ["allowed", "fails", "2,", "then"] and "300 s" in line for line in router)
    assert "  fallbacks          gemini-pro-chat -> gemini-fix" in router
    assert "  context fallbacks  none" in router

    requests = lines_after(text, "Requests")
    assert any(line.split()[:2] == ["drop_params", "yes"] for line in requests)
    assert any(line.split()[:3] == ["master", "key", "set"] for line in requests)
    assert "Warnings (1)\n  - litellm_settings.cache_params.type: redis, but no Redis is configured" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_report_shows_limits_buckets_api_base_extras_and_warnings():
    doc = {
        "model_list": [
            {"model_name": "flash", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_key": ["k1", "k2"],
                                                       "rpm": 5, "rpd": 100, "project": "proj-a", "weight": 2}},
            {"model_name": "local", "litellm_params": {"model": "openai/llama3", "api_key": "k3",
                                                       "api_base": "http://127.0.0.1:8000/v1",
                                                       "max_parallel_requests": 4}},
            {"model_name": "c", "litellm_params": {"model": "cohere/command-r", "api_key": "k4"}},
        ],
        "router_settings": {"routing_strategy": "least-busy", "queue_timeout": 5,
                            "fallbacks": [{"flash": ["local"]}], "redis_host": "localhost"},
    }
    text = describe(parse_config(doc, source="x.yaml", env={}))
    flash = lines_after(text, "flash")
    assert "other" in flash[1].split()  # narrow enough: extras in their own column
    assert all("project proj-a" in line and "rpm 5 · rpd 100" in line for line in flash[2:])
    assert all(line.endswith("weight 2") for line in flash[2:])
    local = lines_after(text, "local")
    assert local[1].split()[-1] == "api_base"
    assert local[2].endswith("http://127.0.0.1:8000/v1")
    assert "parallel 4" in local[2]
    assert "  strategy           least-busy" in text
    assert "flash -> local" in text
    assert "not set: anyone who can reach keymux can spend these keys" in text
    assert "Warnings (2)\n  - model_list[2].litellm_params.model: provider 'cohere' is not supported yet" in text
    assert ("  - deployments flash/0#1, flash/0#2: weight 2: accepted, no effect with routing_strategy least-busy\n"
            "    (only simple-shuffle weighs keys)") in text


def test_long_warnings_wrap_within_100_columns():
    doc = {"model_list": [{"model_name": "g", "litellm_params": {"model": "gemini/x", "api_key": "k",
                                                                 "a_very_long_unknown_setting_name_" * 2: 1}}],
           "litellm_settings": {"success_callback": ["x"], "another_long_unknown_setting_name_here": 1}}
    text = describe(parse_config(doc, env={}))
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "  - litellm_settings.success_callback: ignored: keymux has its own ledger and metrics" in text


def test_limits_text_and_safe_url():
    assert limits_text(Limits(rpm=5, rpd=100)) == "rpm 5 · rpd 100"
    assert limits_text(Limits(tpm=1000, max_parallel=2)) == "tpm 1000 · parallel 2"
    assert limits_text(Limits()) == "not declared"
    assert safe_url("https://u:p@host:8443/v1?key=abc") == "https://host:8443/v1?…"
    assert safe_url("http://localhost:11434/v1") == "http://localhost:11434/v1"


def test_wide_rows_put_extras_and_api_base_on_their_own_lines():
    base = "https://generativelanguage.googleapis.com/v1beta"
    doc = {"model_list": [{"model_name": "flash", "litellm_params": {
        "model": "gemini/gemini-2.5-flash", "api_key": ["k1", "k2"], "rpm": 5, "rpd": 100, "project": "proj-a",
        "weight": 2, "order": 1, "timeout": 20, "input_cost_per_token": 3e-7, "api_base": base + "/"}}]}
    block = lines_after(describe(parse_config(doc, env={})), "flash")
    assert block[1].split() == ["id", "provider", "model", "key", "bucket", "limits"]
    assert block[2].split()[0] == "flash/0#1" and block[2].endswith("rpm 5 · rpd 100")
    assert block[3] == "      weight 2 · order 1 · timeout 20 s · $ per token in 3e-07"
    assert block[4] == f"      api_base {base}"
    assert block[5].split()[0] == "flash/0#2"
    assert max(len(line) for line in block) <= 100


def test_per_deployment_retries_and_stream_timeout_show():
    doc = {"model_list": [{"model_name": "flash", "litellm_params": {
        "model": "gemini/gemini-2.5-flash", "api_key": "k1", "timeout": 20, "stream_timeout": 5, "max_retries": 0}}]}
    block = lines_after(describe(parse_config(doc, env={})), "flash")
    assert "timeout 20 s · stream timeout 5 s · retries 0" in "\n".join(block)
