"""LiteLLM's own example configs and configs from its docs, run through `keymux check` as a user would:
each is accepted (its groups served) or refused for a reason the corpus states (a provider keymux does not
serve, invalid YAML, a template placeholder left in)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from keymux.cli import main

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())


def test_every_config_in_the_corpus_has_an_expected_outcome() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != "expected.yaml") == sorted(EXPECTED["configs"])


@pytest.mark.parametrize("name", sorted(EXPECTED["configs"]))
def test_keymux_check_outcome(name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for var, value in EXPECTED["env"].items():
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
