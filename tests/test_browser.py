"""The Server Options form in a real browser (Playwright driving Debian's Chromium) on a real hub:
group switching, GPU/CPU image availability, launch-link presets with autolaunch, env rows."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.realms import group
from devstack.testing import eventually
from tests.browsers import choose_group, logged_in_page

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def cpu_image_in_ml_team(realm_factory) -> dict[str, Any]:
    """The demo realm with a CPU-only image in ML Team, so a GPU type can meet a CPU image."""
    variant = realm_factory.variant()
    group(variant, "ml-team")["realmRoles"].append("img:datascience")
    return variant


async def test_group_switching_and_gpu_images(browser, hub_factory, cpu_image_in_ml_team):
    hub = hub_factory(cpu_image_in_ml_team)
    page = await logged_in_page(browser, hub.url, "alice")
    await page.goto(f"{hub.url}/hub/spawn")
    ml = page.locator('fieldset[data-group="ml-team"]')
    ph = page.locator('fieldset[data-group="phusers"]')
    assert await ml.is_visible() and not await ph.is_visible()
    await choose_group(page, "phusers")
    assert await ph.is_visible() and not await ml.is_visible()
    assert await ml.locator("input").evaluate_all("inputs => inputs.every(i => i.disabled)")
    await choose_group(page, "ml-team")
    pytorch = ml.locator('input[value="pytorch"]')
    await ml.locator('input[value="cpu-1"]').check()
    assert await pytorch.is_disabled()  # a GPU image on a CPU instance type
    assert await ml.locator('input[value="building"]').is_disabled()  # not ready
    await ml.locator('input[value="gpu-1"]').check()
    assert await pytorch.is_enabled()
    await ml.locator('input[value="datascience"]').check()
    assert await ml.locator(".primehub-gpu-warning").is_visible()
    await pytorch.check()
    assert not await ml.locator(".primehub-gpu-warning").is_visible()


async def test_launch_link_autolaunch_and_env_rows(browser, hub_factory, cpu_image_in_ml_team):
    hub = hub_factory(cpu_image_in_ml_team)
    page = await logged_in_page(browser, hub.url, "alice")
    await page.goto(
        f"{hub.url}/hub/primehub/launch?group=phusers&instancetype=cpu-2&image=nope&autolaunch=1"
    )
    await page.wait_for_url(f"{hub.url}/hub/spawn/alice")
    assert await page.locator("#primehub-group").input_value() == "phusers"
    assert await page.locator('fieldset[data-group="phusers"] input[value="cpu-2"]').is_checked()
    assert await page.locator("#primehub-autolaunch").is_visible()
    notice = await page.locator(".primehub-notice").inner_text()
    assert "Image 'nope' is not available in PH Users; a default is selected for you." in notice
    await page.click("summary")
    await page.click("#primehub-add-env")
    rows = page.locator(".primehub-env-row")
    assert await rows.count() == 2
    await rows.nth(0).locator('input[name="env_name"]').fill("FIRST")
    await rows.nth(0).locator('input[name="env_value"]').fill("1")
    await rows.nth(1).locator('input[name="env_name"]').fill("SECOND")
    await rows.nth(1).locator('input[name="env_value"]').fill("<b>2</b>")
    await page.locator("#spawn_form [type=submit]").click()

    async def started():
        _, model = hub.api("GET", "users/alice")
        return model["servers"].get("", {}).get("user_options")

    options = await eventually(started, timeout=30)
    assert options == {
        "group": "phusers",
        "instance_type": "cpu-2",
        "image": "base-notebook",
        "safe_mode": False,
        "env": {"FIRST": "1", "SECOND": "<b>2</b>"},
    }
