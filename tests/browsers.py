"""Playwright driving Debian's Chromium: the ``browser`` fixture of the browser tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/install-system-packages.sh)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        yield instance
        await instance.close()


async def logged_in_page(browser, hub_url: str, username: str, screenshot: Path | None = None):
    """A page logged in as ``username`` through Keycloak's login form."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{hub_url}/hub/oauth_login")
    await page.wait_for_selector("#kc-login")
    if screenshot is not None:
        await page.screenshot(path=screenshot, full_page=True)
    await page.fill("#username", username)
    await page.fill("#password", username)
    await page.click("#kc-login")
    await page.wait_for_url(
        lambda url: url.startswith(f"{hub_url}/hub/") and "/oauth" not in url, wait_until="load"
    )
    return page


async def choose_group(page, group: str) -> None:
    """Pick a group in the Server Options form and wait until its part is there (fetched on demand)."""
    await page.select_option("#primehub-group", group)
    quoted = json.dumps(group)  # a valid CSS string whatever the name holds
    await page.wait_for_selector(
        f"fieldset.primehub-group[data-group={quoted}]:not([data-lazy]):not([hidden])"
    )
