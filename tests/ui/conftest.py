"""A real headless Chromium (Debian's `chromium`, driven by Playwright) for the dashboard tests.

Never `playwright install`: the browser is the system one. Without it the tests fail (CI installs it: .ci/run).
Screenshots go to test-artifacts/ui/; with KEYMUX_UPDATE_SCREENSHOTS=1 they are also copied to docs/screenshots/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("KEYMUX_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
DOCS = ROOT / "docs" / "screenshots"
IN_DOCS = {"keys-light", "keys-dark", "traffic-light", "traffic-dark", "requests-light", "keys-phone-dark"}


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[test]' (never `playwright install`)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def shot(page: object, name: str) -> None:
    """Save a screenshot of the page as it is now (and refresh docs/ when asked to)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    if os.environ.get("KEYMUX_UPDATE_SCREENSHOTS") == "1" and name in IN_DOCS:
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / path.name)
