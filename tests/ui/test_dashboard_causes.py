"""The dashboard in headless Chromium shows the 2025-2026 429 causes on the key tiles in words a person
understands, and the egress banner while a provider backs off as a whole (then hides it again)."""

from __future__ import annotations

import re
from typing import Any

from openai import RateLimitError
from playwright.async_api import Page, expect

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from ..conftest import OpsFactory, group
from .conftest import shot
from .test_dashboard import T, poll, sign_in, tile

CAP, BILLING, DROPPED, SPARE = "AIzaUiSpendCap1", "AIzaUiPrepay002", "AIzaUiTierDrop3", "AIzaUiSpare0004"
EGRESS = ["AIzaUiEgress001", "AIzaUiEgress002", "AIzaUiEgress003", "AIzaUiEgress004"]


def doc(tmp_path: Any, keys: list[str], name: str) -> dict[str, Any]:
    model_list = [entry for i, k in enumerate(keys) for entry in group("chat", [k], order=i + 1)]
    return {"model_list": model_list, "router_settings": {"queue_timeout": 0, "num_retries": 3},
            "general_settings": {"database_url": f"sqlite:///{tmp_path / name}"}}


async def open_dashboard(browser: Any, stack: Any) -> tuple[Page, list[str]]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await sign_in(page, stack)
    return page, problems


async def test_key_tiles_say_why_google_refused(ops_stack: OpsFactory, browser: Any, tmp_path: Any) -> None:
    keys = [CAP, BILLING, DROPPED, SPARE]
    stack = await ops_stack(doc(tmp_path, keys, "causes.db"), {k: EmuKey() for k in keys})
    page, problems = await open_dashboard(browser, stack)
    await expect(page.locator("article.key")).to_have_count(4, timeout=T)
    stack.gemini.inject(CAP, "spendcap")
    stack.gemini.inject(BILLING, "prepay")
    stack.gemini.inject(DROPPED, "tierdrop")
    answer = await stack.ask("chat")  # three refusals, each for its own cause, then the spare key answers
    assert answer.choices[0].message.content and stack.gemini.count(status=429) == 3
    await poll(page)
    cap = tile(page, fingerprint(CAP))
    await expect(cap).to_have_class("key cooling", timeout=T)
    await expect(cap).to_contain_text(re.compile(r"spend cap.*10-minute"))
    billing = tile(page, fingerprint(BILLING))
    await expect(billing).to_have_class("key exhausted", timeout=T)
    await expect(billing).to_contain_text("prepayment credits depleted")
    await expect(billing).to_contain_text("billing")
    dropped = tile(page, fingerprint(DROPPED))
    await expect(dropped).to_have_class("key cooling", timeout=T)
    await expect(dropped).to_contain_text("usage tier was lowered")
    await expect(dropped.locator(".countdown")).to_have_text(re.compile(r"^\d+ s$"))
    await expect(tile(page, fingerprint(SPARE))).to_have_class("key ready")
    await expect(page.locator("#egress")).to_be_hidden()  # explained 429s are the keys' business, not the IP's
    await shot(page, "keys-429-causes")
    assert [p for p in problems if "status of 401" not in p] == [], problems  # 401: sign_in tries a wrong key


async def test_egress_banner_while_the_provider_backs_off(ops_stack: OpsFactory, browser: Any, tmp_path: Any) -> None:
    stack = await ops_stack(doc(tmp_path, EGRESS, "egress.db"), {k: EmuKey() for k in EGRESS})
    page, problems = await open_dashboard(browser, stack)
    await expect(page.locator("article.key")).to_have_count(4, timeout=T)
    await expect(page.locator("#egress")).to_be_hidden()
    stack.gemini.inject(None, "bare429", "bare429", "bare429")  # the host's IP is throttled, not the keys
    try:
        await stack.ask("chat")
        raise AssertionError("expected the egress back-off to refuse the request")
    except RateLimitError as err:
        assert "egress" in err.message
    await poll(page)
    banner = page.locator("#egress")
    await expect(banner).to_be_visible(timeout=T)
    await expect(banner).to_have_attribute("role", "alert")
    await expect(banner).to_contain_text(re.compile(r"gemini backing off \d+ s: 3 of 4 gemini keys got a 429"))
    for k in EGRESS:  # no key is blamed for the IP's limit
        await expect(tile(page, fingerprint(k))).to_have_class("key ready")
    await shot(page, "egress-banner")
    stack.clock.advance(5.1)
    assert (await stack.ask("chat")).choices[0].message.content
    await poll(page)
    await expect(banner).to_be_hidden(timeout=T)
    assert [p for p in problems if "status of 401" not in p] == [], problems  # 401: sign_in tries a wrong key


async def test_request_detail_shows_what_a_generated_image_cost(ops_stack: OpsFactory, browser: Any, tmp_path: Any) -> None:
    key = "AIzaUiImage0001"
    model_list = [{"model_name": "img", "litellm_params": {"model": "gemini/gemini-3-pro-image-preview", "api_key": key},
                   "model_info": {"tier": "paid"}}] + group("chat", ["AIzaUiText00002"])
    stack = await ops_stack({"model_list": model_list,
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'image.db'}"}},
                            {key: EmuKey(), "AIzaUiText00002": EmuKey()})
    await stack.ask("chat")
    stack.clock.advance(1)  # rows of one instant have no order
    await stack.ask("img", modalities=["text", "image"])
    await stack.gateway.ledger.flush()
    page, problems = await open_dashboard(browser, stack)
    await page.click("#tab-requests")
    rows = page.locator("#requests tbody tr")
    await expect(rows).to_have_count(2, timeout=T)
    detail = page.locator("#detail")
    await rows.first.get_by_role("button").click()  # the image request (newest)
    await expect(detail).to_contain_text("Priced by modality")
    await expect(detail).to_contain_text("image output $0.15")  # 1290 image tokens at $120 per million
    await rows.nth(1).get_by_role("button").click()  # text only: nothing priced apart
    await expect(detail).to_contain_text("gemini-2.5-flash")
    await expect(detail).not_to_contain_text("Priced by modality")
    await shot(page, "request-modality-cost")
    assert [p for p in problems if "status of 401" not in p] == [], problems
