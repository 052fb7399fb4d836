"""The Keys view in headless Chromium shows what is pinned to each key (interactions, files, caches,
batches) and the requests that waited for their pinned key: kind, wait and outcome."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from ..conftest import MASTER, OpsFactory, group
from ..pinned import pin_some, wait_for_pinned
from .conftest import shot
from .test_dashboard import T, poll, tile
from .test_dashboard_causes import open_dashboard

KEYS = ["AIzaUiPinned001", "AIzaUiPinned002"]


async def test_the_keys_view_shows_pins_and_waits(ops_stack: OpsFactory, browser: Any, tmp_path: Any) -> None:
    doc = {"model_list": group("chat", KEYS), "router_settings": {"queue_timeout": 120},
           "general_settings": {"database_url": f"sqlite:///{tmp_path / 'pins.db'}"}}
    stack = await ops_stack(doc, {k: EmuKey() for k in KEYS})
    page, problems = await open_dashboard(browser, stack)
    await expect(page.locator("article.key")).to_have_count(2, timeout=T)
    await expect(page.locator("#pin-waits-empty")).to_be_visible()
    await expect(page.locator("#pins-table tbody tr")).to_have_count(2, timeout=T)

    owner, _ = await wait_for_pinned(stack.base, MASTER, "chat", stack)
    await pin_some(stack.base, MASTER, "chat")
    await poll(page)
    emu = stack.gemini
    for k in KEYS:
        row = page.locator(f'#pins-table tbody tr[data-key="{fingerprint(k)}"]')
        await expect(row.locator('[data-kind="interactions"]')).to_have_text(str(len(emu.interactions.owned_by(k))),
                                                                              timeout=T)
        await expect(row.locator('[data-kind="files"]')).to_have_text(str(len(emu.files_api.owned_by(k))))
        await expect(row.locator('[data-kind="cachedContents"]')).to_have_text(str(len(emu.stateful.caches_of(k))))
        await expect(row.locator('[data-kind="batches"]')).to_have_text(str(len(emu.stateful.batches_of(k))))
        await expect(row.locator('[data-kind="waits"]')).to_have_text("1" if fingerprint(k) == owner else "0")
    await expect(tile(page, owner).locator(".pinned")).to_contain_text("2 interactions")
    await expect(page.locator("#pins-running")).to_contain_text("1 batch still running")
    waits = page.locator("#pin-waits tbody tr")
    await expect(waits).to_have_count(1)
    await expect(page.locator("#pin-waits-empty")).to_be_hidden()
    cells = waits.first.locator("td")
    await expect(cells.nth(1)).to_have_text(owner)
    await expect(cells.nth(2)).to_have_text("interaction")
    await expect(cells.nth(3)).to_have_text("interactions.create")
    await expect(cells.nth(4)).to_have_text("31.0 s")
    await expect(cells.nth(5)).to_have_text("ok (200)")
    content = await page.content()
    assert not any(k in content for k in KEYS)  # fingerprints only
    await shot(page, "pins-light")
    assert [p for p in problems if "status of 401" not in p] == [], problems  # 401: sign_in tries a wrong key
