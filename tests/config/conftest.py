"""Shared fixtures for the config tests: real-looking keys, an environment, a YAML writer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _key(tag: str) -> str:
    """A Google-AI-Studio-looking key (39 characters, AIzaSy prefix)."""
    return ("AIzaSy" + tag + "Q7vR2xK9mN4pL8wT3bH6jF1cZ5dG0sY")[:39]


CHAT_KEYS = [_key(f"Ch{i}") for i in (1, 2, 3)]
IMAGE_KEYS = [_key(f"Im{i}") for i in (1, 2)]
FIX_KEYS = [_key(f"Fx{i}") for i in (1, 2)]
# What litellm_config.yaml's environment_variables section sets (it must win over the process env).
ENV_SECTION_CHAT_KEY_1 = "AIzaSyEnvVarsSectionKey1aaaaaaaaaaaaaaaa"
MASTER_KEY = "sk-keymux-master-Xy9Zq8Wv7Ut6Sr5Qp4"


@pytest.fixture
def litellm_env() -> dict[str, str]:
    env = {f"GEMINI_CHAT_KEY_{i}": k for i, k in enumerate(CHAT_KEYS, 1)}
    env |= {f"GEMINI_IMAGE_KEY_{i}": k for i, k in enumerate(IMAGE_KEYS, 1)}
    env |= {f"GEMINI_FIX_KEY_{i}": k for i, k in enumerate(FIX_KEYS, 1)}
    return env


@pytest.fixture
def all_secrets(litellm_env) -> list[str]:
    return [*litellm_env.values(), ENV_SECTION_CHAT_KEY_1, MASTER_KEY]


@pytest.fixture
def litellm_config_path() -> Path:
    return HERE / "litellm_config.yaml"


@pytest.fixture
def write_yaml(tmp_path):
    """write_yaml(text, name="config.yaml") -> Path; dedented, leading newline dropped (line 1 = first line)."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture
def keys():
    """The secret values used by litellm_config.yaml and litellm_env, by role."""
    from types import SimpleNamespace

    return SimpleNamespace(chat=CHAT_KEYS, image=IMAGE_KEYS, fix=FIX_KEYS,
                           env_section_chat_1=ENV_SECTION_CHAT_KEY_1, master=MASTER_KEY)
