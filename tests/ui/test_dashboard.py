"""The dashboard in a real headless Chromium, against a gateway and the Gemini emulator on a FakeClock:
sign in, keys changing state as traffic drives them, operator actions moving traffic, adding a key,
charts with data, the requests table and its detail panel, dark theme, phone width, keyboard."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openai import APIStatusError
from playwright.async_api import Page, expect

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from ..conftest import MASTER, OpsFactory, OpsStack, group
from .conftest import shot

MINUTE, DAILY, SPARE, BAD, ADDED = "AIzaUiMinute01", "AIzaUiDaily002", "AIzaUiSpare003", "AIzaUiBadKey04", "AIzaUiAdded05"
KEYS = {MINUTE: EmuKey(rpm=1), DAILY: EmuKey(rpd=2), SPARE: EmuKey(), BAD: EmuKey(status="invalid"), ADDED: EmuKey()}
FP = {k: fingerprint(k) for k in KEYS}
T = 8000  # ms: how long an expectation may wait (the page polls every 2 s; tests also ask it to poll now)


def doc(tmp_path: Any) -> dict[str, Any]:
    limits = {"rpm": 10, "rpd": 100, "tpm": 100_000}
    return {"model_list": group("chat", [MINUTE], order=1, project="proj-a", **limits)
            + group("chat", [DAILY], order=2, **limits) + group("chat", [SPARE], order=3, **limits)
            + group("other", [BAD]),
            "router_settings": {"queue_timeout": 0, "num_retries": 2},
            "general_settings": {"database_url": f"sqlite:///{tmp_path / 'ui.db'}"}}


def tile(page: Page, fp: str) -> Any:
    return page.locator(f'article.key[data-key="{fp}"]')


async def poll(page: Page) -> None:
    await page.evaluate("window.keymuxDashboard.refresh()")


async def sign_in(page: Page, stack: OpsStack) -> None:
    await page.goto(f"{stack.base}/ui")
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#master", "sk-wrong")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("Wrong master key", timeout=T)
    assert await page.evaluate("sessionStorage.getItem('keymux.master')") is None
    await page.fill("#master", MASTER)
    await page.press("#master", "Enter")
    await expect(page.locator("#app")).to_be_visible(timeout=T)
    assert MASTER not in page.url


async def test_dashboard_end_to_end(ops_stack: OpsFactory, browser: Any, tmp_path: Any) -> None:
    stack = await ops_stack(doc(tmp_path), KEYS)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    await sign_in(page, stack)

    # Keys: every key, all ready at first.
    await expect(page.locator("article.key")).to_have_count(4, timeout=T)
    await expect(tile(page, FP[MINUTE])).to_contain_text("proj-a")
    await expect(tile(page, FP[MINUTE]).locator(".badge").first).to_have_text("ready")

    # Traffic drives MINUTE into a per-minute cooldown (Google's retry delay) and DAILY to its daily limit.
    for _ in range(4):
        await stack.ask("chat")
    with pytest.raises(APIStatusError):
        await stack.ask("other")  # its only key is invalid: the request fails, the key is disabled
    await poll(page)
    minute = tile(page, FP[MINUTE])
    await expect(minute).to_have_class("key cooling", timeout=T)
    await expect(minute).to_contain_text("per-minute quota, Google asked to wait")
    await expect(minute.locator(".countdown")).to_have_text(re.compile(r"^(\d+ min )?\d+ s$"))
    daily = tile(page, FP[DAILY])
    await expect(daily).to_have_class("key exhausted", timeout=T)
    await expect(daily).to_contain_text("daily quota")
    await expect(daily).to_contain_text("back at 00:00 PT")
    await expect(tile(page, FP[BAD])).to_contain_text("invalid key", timeout=T)
    await expect(tile(page, FP[SPARE])).to_have_class("key ready")
    await expect(tile(page, FP[SPARE]).locator(".today")).to_contain_text("1 request ")
    await expect(tile(page, FP[MINUTE]).locator('[role=meter][aria-label="rpm used"]')).to_have_attribute(
        "aria-valuemax", "1")  # learned from Google's 429: tighter than the declared 10
    # The live region announces the changes the latest poll saw (which poll sees which change is timing).
    await expect(page.locator("#status")).to_contain_text(re.compile(r"is (cooling|exhausted|disabled) \("))
    await shot(page, "keys-light")

    # Disable and enable: traffic moves. A minute later MINUTE is back; disabled, SPARE takes the request.
    stack.clock.advance(61)
    await poll(page)
    await expect(minute).to_have_class("key ready", timeout=T)
    await minute.get_by_role("button", name=f"Disable {FP[MINUTE]}").click()
    await expect(minute).to_have_class("key disabled", timeout=T)
    await expect(minute).to_contain_text("disabled by an operator")
    spare, calls = stack.gemini.count(key=SPARE), stack.gemini.count(key=MINUTE)
    await stack.ask("chat")
    assert stack.gemini.count(key=SPARE) == spare + 1 and stack.gemini.count(key=MINUTE) == calls
    await minute.get_by_role("button", name=f"Enable {FP[MINUTE]}").click()
    await expect(minute).to_have_class("key ready", timeout=T)
    stack.clock.advance(1)  # rows of one instant have no order
    await stack.ask("chat")
    assert stack.gemini.count(key=MINUTE) == calls + 1

    # Add a key: the secret goes once and is cleared; a tile appears.
    await page.select_option("#add-group", "chat")
    await page.fill("#add-api-key", ADDED)
    await page.fill("#add-rpm", "5")
    await page.click("#add-key button[type=submit]")
    await expect(page.locator("#add-result")).to_contain_text(f"Added {FP[ADDED]}", timeout=T)
    assert await page.input_value("#add-api-key") == ""
    added = tile(page, FP[ADDED])
    await expect(added).to_contain_text("added at run time", timeout=T)
    await expect(added.locator('[role=meter][aria-label="rpm used"]')).to_have_attribute("aria-valuemax", "5")
    assert ADDED not in await page.content()
    storage = await page.evaluate("JSON.stringify(Object.assign({}, sessionStorage, localStorage))")
    assert ADDED not in storage and storage.count(MASTER) == 1

    # Requests: the newest went to MINUTE, the one before to SPARE; filter and detail.
    await page.click("#tab-requests")
    rows = page.locator("#requests tbody tr")
    await expect(rows.first).to_contain_text(FP[MINUTE], timeout=T)
    await expect(rows.nth(1)).to_contain_text(FP[SPARE])
    await page.select_option("#outcome", "error")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("other")
    await page.select_option("#outcome", "rate_limited")
    await expect(rows).to_have_count(2)
    await rows.first.get_by_role("button").click()
    detail = page.locator("#detail")
    await expect(detail).to_be_visible()
    await expect(detail.locator("ol.attempts li")).to_have_count(2)
    await expect(detail).to_contain_text("rate limited")  # the attempt that met Google's 429, and why
    await expect(detail.locator("#detail-title")).to_be_focused()
    await page.select_option("#outcome", "")
    await shot(page, "requests-light")
    await page.select_option("#outcome", "")
    await page.fill("#filter", "other")
    await expect(rows).to_have_count(1)
    await rows.first.get_by_role("button").click()
    await expect(detail).to_contain_text("key rejected by the provider")
    await expect(detail).to_contain_text("Why")
    assert "[object" not in await detail.inner_text()
    await page.keyboard.press("Escape")
    await expect(detail).to_be_hidden()
    await page.fill("#filter", "")

    # Traffic: charts with data, zoom by dragging, double-click to reset.
    await page.click("#tab-traffic")
    await expect(page.locator("#fig-outcomes canvas")).to_have_count(1, timeout=T)
    await expect(page.locator("#traffic-totals")).to_contain_text("2 rate-limited")
    for fig in ("fig-outcomes", "fig-tokens", "fig-latency"):
        assert int(await page.get_attribute(f"#{fig}", "data-points") or 0) > 0, fig
    ok_color = await page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--c1').trim()")
    assert await drawn(page, "#fig-outcomes canvas", ok_color) > 20
    over = page.locator("#fig-outcomes .u-over")
    box = await over.bounding_box()
    assert box is not None
    full = await page.evaluate("(() => { const x = window.keymuxDashboard.state.charts[0].plot.scales.x; return x.max - x.min; })()")
    await page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + 40, steps=5)
    await page.mouse.up()
    spans = await page.evaluate("window.keymuxDashboard.state.charts.map(c => c.plot.scales.x.max - c.plot.scales.x.min)")
    assert all(s < full * 0.6 for s in spans), (spans, full)  # every chart followed the zoom
    await over.dblclick()
    spans = await page.evaluate("window.keymuxDashboard.state.charts.map(c => c.plot.scales.x.max - c.plot.scales.x.min)")
    assert all(abs(s - full) < 1 for s in spans), (spans, full)
    await page.select_option("#split", "key")
    await expect(page.locator("#fig-requests")).to_be_visible(timeout=T)
    await expect(page.locator("#fig-requests .u-legend")).to_contain_text(FP[MINUTE], timeout=T)
    await shot(page, "traffic-light")

    # Dark theme (toggle), readable: light text on a dark page.
    await page.click("#theme")  # auto -> light
    await page.click("#theme")  # light -> dark
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    await expect(page.locator("#fig-outcomes canvas")).to_have_count(1, timeout=T)
    bg, fg = await page.evaluate("[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]")
    assert luminance(bg) < 0.1 and luminance(fg) > 0.6, (bg, fg)
    await expect(page.locator("#fig-tokens .u-legend")).to_be_visible()
    await shot(page, "traffic-dark")
    await page.click("#tab-keys")
    await shot(page, "keys-dark")
    await page.click("#theme")  # back to auto

    # Keyboard: tabs are buttons with arrow keys; actions are buttons in the tab order.
    await page.focus("#tab-keys")
    await page.keyboard.press("ArrowRight")
    await expect(page.locator("#tab-traffic")).to_be_focused()
    await expect(page.locator("#tab-traffic")).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("ArrowLeft")
    await expect(page.locator("#view-keys")).to_be_visible()
    await page.keyboard.press("Tab")
    focus = await page.evaluate("document.activeElement.tagName")
    assert focus == "BUTTON"

    # Sign out: the key is gone from the tab.
    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('keymux.master')") is None
    assert [p for p in problems if "status of 401" not in p] == [], problems  # 401: the wrong key, on purpose
    await context.close()


async def test_phone_width_and_reload_keeps_the_session(ops_stack: OpsFactory, browser: Any, tmp_path: Any) -> None:
    stack = await ops_stack(doc(tmp_path), KEYS)
    for _ in range(3):
        await stack.ask("chat")
    context = await browser.new_context(viewport={"width": 375, "height": 800}, color_scheme="dark",
                                        device_scale_factor=2)
    page = await context.new_page()
    await sign_in(page, stack)
    await expect(page.locator("article.key")).to_have_count(4, timeout=T)
    await page.reload()  # sessionStorage survives a reload of the tab: no new sign-in
    await expect(page.locator("article.key")).to_have_count(4, timeout=T)
    for view in ("keys", "traffic", "requests"):
        await page.click(f"#tab-{view}")
        if view == "traffic":
            await expect(page.locator("#fig-latency canvas")).to_have_count(1, timeout=T)
        if view == "requests":
            await expect(page.locator("#requests tbody tr")).to_have_count(3, timeout=T)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (view, width)
        await shot(page, f"{view}-phone-dark")
    await context.close()


async def drawn(page: Page, selector: str, color: str) -> int:
    """How many pixels of `color` (#rrggbb) the canvas holds: the series really was drawn."""
    return await page.evaluate("""([sel, hex]) => {
        const c = document.querySelector(sel), ctx = c.getContext('2d');
        const want = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
        const px = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4)
            if (px[i + 3] > 200 && want.every((v, j) => Math.abs(px[i + j] - v) < 40)) n++;
        return n;
    }""", [selector, color])


def luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
