"""An operator's disable outlives the process: stored in the ledger database and re-applied at start."""

from __future__ import annotations

from pathlib import Path

from ..conftest import OpsFactory
from ..ledger.test_postgres import pg_url  # noqa: F401  (fixture)
from .test_admin import FP, KEYS, doc, keys_by_fp


async def restart_cycle(ops_stack: OpsFactory, document: dict) -> None:
    stack = await ops_stack(document, KEYS)
    status, body = await stack.admin("POST", f"/admin/keys/{FP['k1']}/disable")
    assert status == 200 and body["persisted"] is True
    await stack.server.close()

    again = await ops_stack(document, reuse=stack)
    keys = await keys_by_fp(again)
    assert keys[FP["k1"]]["state"] == "disabled" and keys[FP["k1"]]["models"][0]["why"] == "disabled by an operator"
    assert keys[FP["k2"]]["state"] == "ready"
    for _ in range(2):
        await again.ask()
    assert again.gemini.count(key="k1") == 0  # the disabled key took nothing after the restart
    status, body = await again.admin("POST", f"/admin/keys/{FP['k1']}/enable")
    assert status == 200 and body["persisted"] is True
    await again.server.close()

    third = await ops_stack(document, reuse=again)
    assert (await keys_by_fp(third))[FP["k1"]]["state"] == "ready"


async def test_a_disabled_key_stays_disabled_after_a_restart_on_sqlite(ops_stack: OpsFactory, tmp_path: Path) -> None:
    await restart_cycle(ops_stack, doc(tmp_path))


async def test_a_disabled_key_stays_disabled_after_a_restart_on_postgres(ops_stack: OpsFactory,
                                                                         pg_url: str) -> None:  # noqa: F811
    document = doc(Path("."))
    document["general_settings"] = {"database_url": pg_url}
    await restart_cycle(ops_stack, document)


async def test_a_disable_the_database_cannot_store_still_applies_and_says_so(ops_stack: OpsFactory,
                                                                             tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    document = doc(tmp_path)
    document["general_settings"] = {"database_url": f"sqlite:///{blocker / 'x.db'}"}
    stack = await ops_stack(document, KEYS)
    status, body = await stack.admin("POST", f"/admin/keys/{FP['k1']}/disable")
    assert status == 200 and body["persisted"] is False and "sqlite" in body["ledger_error"]
    assert (await keys_by_fp(stack))[FP["k1"]]["state"] == "disabled"
