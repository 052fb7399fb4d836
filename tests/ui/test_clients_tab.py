"""The Clients tab in a real headless Chromium: create a gateway key (shown once), see its requests, spend
against budget and refusals as an SDK client uses it, disable and rotate it from the page; a read-only
admin key signs in and sees the tab; the page never holds a key after it was shown."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from playwright.async_api import expect

from keymux.emulator import EmuKey

from ..conftest import MASTER, MSG, OpsFactory, group
from .conftest import shot

T = 8000
KEY = "AIzaUiClients01"


def doc(tmp_path: Any) -> dict[str, Any]:
    models = group("chat", [KEY], input_cost_per_token=0.001, output_cost_per_token=0.001) + group("image", [KEY],
                                                                                                   model="gemini-2.5-pro")
    models[0]["model_info"] = {"tier": "paid"}
    return {"model_list": models, "router_settings": {"queue_timeout": 0, "num_retries": 0},
            "general_settings": {"database_url": f"sqlite:///{tmp_path / 'ui.db'}"}}


async def test_clients_tab_create_watch_disable_rotate(ops_stack: OpsFactory, browser: Any, tmp_path: Any) -> None:
    stack = await ops_stack(doc(tmp_path), {KEY: EmuKey()})
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    await page.goto(f"{stack.base}/ui")
    await page.fill("#master", MASTER)
    await page.press("#master", "Enter")
    await expect(page.locator("#app")).to_be_visible(timeout=T)
    await page.click("#tab-clients")
    await expect(page.locator("#clients-empty")).to_be_visible(timeout=T)

    await page.fill("#client-name", "image-job")
    await page.fill("#client-models", "chat")
    await page.fill("#client-rpm", "2")
    await page.fill("#client-budget", "2/day")
    await page.click("#add-client button[type=submit]")
    await expect(page.locator("#client-result")).to_contain_text("Created image-job", timeout=T)
    secret = await page.locator("#client-secret").text_content()
    assert secret and secret.startswith("sk-km-")
    row = page.locator('#clients tr[data-client="image-job"]')
    await expect(row).to_contain_text("rpm 2")
    await expect(row).to_contain_text("$2.00/day")

    client = stack.openai(secret)
    await client.chat.completions.create(model="chat", messages=MSG)
    await client.chat.completions.create(model="chat", messages=MSG)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="chat", messages=MSG)
    await page.evaluate("window.keymuxDashboard.refresh()")
    await expect(row.locator("td").nth(3)).to_have_text("2", timeout=T)  # requests today
    await expect(row.locator(".spent")).not_to_have_text("$0.00")
    await expect(row.locator("td").nth(6)).to_have_text("1")  # refused by its own rpm
    await shot(page, "clients-light")

    await row.get_by_role("button", name="Disable image-job").click()
    await expect(row.locator(".state")).to_have_text("disabled", timeout=T)
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="chat", messages=MSG)
    await row.get_by_role("button", name="Enable image-job").click()
    await expect(row.locator(".state")).to_have_text("active", timeout=T)
    await row.get_by_role("button", name="Rotate image-job").click()
    await expect(page.locator("#client-secret")).not_to_have_text(secret, timeout=T)
    rotated = await page.locator("#client-secret").text_content()
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="chat", messages=MSG)
    assert rotated and rotated.startswith("sk-km-")

    # A read-only admin key is enough for the dashboard; its writes are refused in the page.
    status, reader = await stack.admin("POST", "/admin/clients", {"name": "wallboard", "admin": "read"})
    assert status == 201
    viewer = await (await browser.new_context()).new_page()
    await viewer.goto(f"{stack.base}/ui")
    await viewer.fill("#master", reader["key"])
    await viewer.press("#master", "Enter")
    await expect(viewer.locator("#app")).to_be_visible(timeout=T)
    await viewer.click("#tab-clients")
    await expect(viewer.locator('#clients tr[data-client="image-job"]')).to_be_visible(timeout=T)
    await viewer.fill("#client-name", "sneaky")
    await viewer.click("#add-client button[type=submit]")
    await expect(viewer.locator("#client-result")).to_contain_text("read-only", timeout=T)
    assert problems == []
