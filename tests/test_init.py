"""`keymux init`: a config written from GEMINI_KEY_* variables or flags, never holding a key, with a master
key generated and shown once; the file it writes loads and names the right keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from keymux.config.load import load_config
from keymux.fingerprint import fingerprint

ROOT = Path(__file__).resolve().parent.parent  # on PYTHONPATH: this checkout's keymux, whatever the cwd
KEYS = {"GEMINI_KEY_CHAT_1": "AIzaSyInitChatOne", "GEMINI_KEY_CHAT_2": "AIzaSyInitChatTwo",
        "GEMINI_KEY_IMAGE_1": "AIzaSyInitImage", "GOOGLE_AI_STUDIO_KEY_PRO_FIX_1": "AIzaSyInitFix"}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "KEYMUX_", "LITELLM_"))}
    return env | {"PYTHONPATH": str(ROOT)} | extra


def init(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keymux", "init", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=30)


def test_init_groups_key_variables_by_job_and_writes_no_key(tmp_path: Path) -> None:
    env = clean_env(**KEYS, KEYMUX_RPM_CHAT="5")
    out = init(tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "keymux.yaml").read_text()
    assert "AIzaSy" not in text and "sk-keymux-" not in text
    assert "os.environ/KEYMUX_MASTER_KEY" in text
    master = [line.split("=", 1)[1] for line in out.stdout.splitlines() if line.strip().startswith("KEYMUX_MASTER_KEY=")]
    assert len(master) == 1 and master[0].startswith("sk-keymux-") and out.stdout.count(master[0]) == 1

    config = load_config(tmp_path / "keymux.yaml", env=env | {"KEYMUX_MASTER_KEY": master[0]})
    groups: dict[str, list[tuple[str, str, int | None]]] = {}
    for d in config.deployments:
        groups.setdefault(d.group, []).append((d.fingerprint, d.model, d.limits.rpm))
    assert groups == {
        "gemini-chat": [(fingerprint(KEYS["GEMINI_KEY_CHAT_1"]), "gemini-2.5-flash", 5),
                        (fingerprint(KEYS["GEMINI_KEY_CHAT_2"]), "gemini-2.5-flash", 5)],
        "gemini-image": [(fingerprint(KEYS["GEMINI_KEY_IMAGE_1"]), "gemini-2.5-flash-image", None)],
        "gemini-pro-fix": [(fingerprint(KEYS["GOOGLE_AI_STUDIO_KEY_PRO_FIX_1"]), "gemini-2.5-flash", None)],
    }
    assert config.master_key == master[0]


def test_init_from_flags_and_an_existing_master_key(tmp_path: Path) -> None:
    env = clean_env(MY_PRO_KEY="AIzaSyFlagKey", KEYMUX_MASTER_KEY="sk-already-set")
    out = init(tmp_path, "--key", "chat=MY_PRO_KEY", "--model", "chat=gemini-2.5-pro", "--rpm", "chat=5",
               "--rpd", "chat=100", "-o", "pro.yaml", env=env)
    assert out.returncode == 0, out.stderr
    assert "sk-already-set" not in out.stdout + out.stderr and "read from KEYMUX_MASTER_KEY" in out.stdout
    (d,) = load_config(tmp_path / "pro.yaml", env=env).deployments
    assert (d.group, d.model, d.limits.rpm, d.limits.rpd) == ("gemini-chat", "gemini-2.5-pro", 5, 100)
    assert d.fingerprint == fingerprint("AIzaSyFlagKey")


def test_init_refuses_a_pasted_key_no_keys_and_overwriting(tmp_path: Path) -> None:
    pasted = init(tmp_path, "--key", "chat=AIzaSy-Pasted.Key", env=clean_env())
    assert pasted.returncode == 2 and "name of an environment variable" in pasted.stderr
    assert "AIzaSy" not in pasted.stdout + pasted.stderr and not (tmp_path / "keymux.yaml").exists()

    none = init(tmp_path, env=clean_env())
    assert none.returncode == 2 and "GEMINI_KEY_" in none.stderr

    (tmp_path / "keymux.yaml").write_text("# mine\n")
    kept = init(tmp_path, env=clean_env(**KEYS))
    assert kept.returncode == 1 and "--force" in kept.stderr
    assert (tmp_path / "keymux.yaml").read_text() == "# mine\n"
    assert init(tmp_path, "--force", env=clean_env(**KEYS)).returncode == 0


def test_init_to_stdout_prints_the_config_and_the_master_key_apart(tmp_path: Path) -> None:
    out = init(tmp_path, "-o", "-", env=clean_env(**KEYS))
    assert out.returncode == 0
    assert out.stdout.startswith("# keymux config") and "KEYMUX_MASTER_KEY=sk-keymux-" in out.stderr
    assert "sk-keymux-" not in out.stdout and not list(tmp_path.iterdir())


def test_every_keymux_setting_from_the_environment_reaches_the_config() -> None:
    from keymux.config.load import parse_config
    from keymux.envconfig import document, jobs_from_environ

    env = {"GEMINI_KEY_3": "AIzaSyNoJob", "GEMINI_KEY_IMAGE_2": "AIzaSyImage", "GEMINI_KEY_EMPTY_1": "",
           "KEYMUX_MODEL_CHAT": "gemini-2.5-pro", "KEYMUX_RPD_IMAGE": "20", "KEYMUX_MASTER_KEY": "sk-env",
           "KEYMUX_DATABASE_URL": "sqlite:////tmp/keymux-env.db", "KEYMUX_REDIS_URL": "redis://127.0.0.1:6379/0",
           "KEYMUX_REDIS_NAMESPACE": "envtest", "KEYMUX_QUEUE_TIMEOUT": "12", "KEYMUX_NUM_RETRIES": "1",
           "KEYMUX_TIMEOUT": "45", "KEYMUX_ROUTING_STRATEGY": "least-busy"}
    doc = document(jobs_from_environ(env), env)
    assert "AIzaSy" not in repr(doc) and "sk-env" not in repr(doc) and "redis://" not in repr(doc)
    config = parse_config(doc, env=env)
    assert [(d.group, d.model, d.limits.rpd) for d in config.deployments] == [
        ("gemini-chat", "gemini-2.5-pro", None), ("gemini-image", "gemini-2.5-flash-image", 20)]  # empty: left out
    router = config.router
    assert (router.queue_timeout, router.num_retries, router.timeout, router.routing_strategy) == (
        12, 1, 45, "least-busy")
    assert router.redis is not None and router.redis.namespace == "envtest"
    assert config.master_key == "sk-env" and config.database_url == "sqlite:////tmp/keymux-env.db"
