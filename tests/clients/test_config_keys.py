"""Gateway keys kept in the config file: LiteLLM's field names, secrets from the environment, a broken entry
named by its path, a reload that changes them, and a soft budget that only alerts (once per period)."""

from __future__ import annotations

import logging
from pathlib import Path

import openai
import pytest

from keymux.app import create_app
from keymux.config.fields import ConfigError
from keymux.config.load import parse_config
from keymux.emulator import EmuKey

from ..conftest import MSG, OpsFactory, group

KEY = "sk-from-the-file-0123456789"


def doc(db: str, **fields: object) -> dict:
    models = group("chat", ["AIzaSyConfigKeys1"], input_cost_per_token=0.001, output_cost_per_token=0.001)
    models[0]["model_info"] = {"tier": "paid"}
    return {"model_list": models, "router_settings": {"queue_timeout": 0, "num_retries": 0},
            "general_settings": {"database_url": db, "virtual_keys": [{"key_alias": "job", "key": KEY, **fields}]}}


def test_a_broken_entry_is_refused_with_its_path_and_the_key_comes_from_the_environment() -> None:
    bad = {"model_list": group("chat", ["AIzaSyConfigKeys1"]),
           "general_settings": {"master_key": "sk-m", "virtual_keys": [{"name": "a", "key": KEY, "rpm": -1}]}}
    with pytest.raises(ConfigError) as e:
        create_app(parse_config(bad, env={}))
    assert "virtual_keys[0]" in str(e.value) and "rpm" in str(e.value)
    env = {"JOB_KEY": KEY}
    good = {**bad, "general_settings": {"master_key": "sk-m", "virtual_keys": [{"name": "a", "key": "os.environ/JOB_KEY"}]}}
    config = parse_config(good, env=env)
    assert KEY not in repr(config)
    with pytest.raises(ConfigError) as missing:
        parse_config({**good, "general_settings": {"virtual_keys": [{"name": "a", "key": "os.environ/NOPE"}]}}, env={})
    assert "NOPE" in str(missing.value)


async def test_reload_changes_file_keys_and_soft_budget_alerts_once(ops_stack: OpsFactory, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="keymux.clients")
    db = f"sqlite:///{tmp_path / 'l.db'}"
    stack = await ops_stack(doc(db, max_budget=100, budget_duration="1d", soft_budget=0.000001), {
        "AIzaSyConfigKeys1": EmuKey()})
    client = stack.openai(KEY)
    for _ in range(3):
        await client.chat.completions.create(model="chat", messages=MSG)
    alerts = [r for r in caplog.records if "soft budget" in r.getMessage()]
    assert len(alerts) == 1 and "'job'" in alerts[0].getMessage()
    status, one = await stack.admin("GET", "/admin/clients/job")
    assert one["usage"]["over_soft_budget"] is True and one["budget"] == {"usd": 100.0, "period": "day"}

    stack.write(doc(db, rpm_limit=1, models=["nothing-here"]))
    status, _ = await stack.admin("POST", "/admin/reload")
    assert status == 200
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="chat", messages=MSG)
    stack.write({**doc(db), "general_settings": {"database_url": db}})
    await stack.admin("POST", "/admin/reload")
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="chat", messages=MSG)
