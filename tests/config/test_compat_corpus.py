"""LiteLLM's own example configs and configs from its docs, run through `keymux check` as a user would:
each is accepted (its groups served) or refused for a reason the corpus states (a provider keymux does not
serve, invalid YAML, a template placeholder left in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from keymux.cli import main
from keymux.emulator.google_token import service_account

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())
KEY_FILE = "{service account key file}"  # an env value: the path of a key file made for the test (a fresh RSA key)


def test_every_config_in_the_corpus_has_an_expected_outcome() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != "expected.yaml") == sorted(EXPECTED["configs"])


@pytest.mark.parametrize("name", sorted(EXPECTED["configs"]))
def test_keymux_check_outcome(name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                              tmp_path: Path) -> None:
    for var, value in EXPECTED["env"].items():
        if value == KEY_FILE:
            value = str(tmp_path / "service_account.json")
            (tmp_path / "service_account.json").write_text(json.dumps(service_account("corpus-proj", "https://oauth2.googleapis.com/token")[0]))
        monkeypatch.setenv(var, value)
    case = EXPECTED["configs"][name]
    try:
        code = main(["check", "--config", str(CORPUS / name)])
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    if "refused" in case:
        assert code == 2, out
        for text in case["refused"]:
            assert text in err
        return
    assert code == 0, err
    verdicts = out.split("Verdict per group\n", 1)[1].split("\n\n", 1)[0]
    listed = {line.split()[0] for line in verdicts.splitlines() if not line.startswith("   ")}  # not wrapped text
    assert listed == set(case["accepted"]) | set(case.get("aliases", ()))
    flat = " ".join(out.split())  # the report wraps long warnings
    for text in case.get("warnings", ()):
        assert text in flat
    for value in EXPECTED["env"].values():
        if len(value) > 12 and not value.startswith("http"):
            assert value not in out + err  # keys appear only as fingerprints
