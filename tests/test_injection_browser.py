"""Markup from Keycloak and from the catalog stays text in a real browser.

A group whose *name* and display name carry markup, instance type, image and dataset display names
and descriptions with markup, and a user attribute (environment presets) with markup: mallory opens
the form, launches, passes the spawn-pending page and looks at the home page. Every payload calls
``alert()``; Chromium reports any dialog, so an executed payload fails the test, and every payload
must also be visible as literal text.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from devstack.realms import add_user
from devstack.testing import eventually
from tests.browsers import choose_group, logged_in_page

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.browser]

GROUP = "q\"'<svg onload=alert('group-name')>"
PAYLOADS = {
    "group display name": "<img src=x onerror=alert('group')> Evil & Co",
    "instance type display name": "\"><img src=x onerror=alert('it')>",
    "instance type description": "<script>alert('it-description')</script>",
    "image display name": "<img src=x onerror=alert('image')>",
    "image description": "'><svg onload=alert('image-description')>",
    "dataset display name": "<img src=x onerror=alert('dataset')>",
    "dataset description": "<iframe srcdoc=\"<script>alert('dataset-description')</script>\">",
    "user attribute": "\"><img src=x onerror=alert('env')>",
}
CRD_API = "/apis/primehub.io/v1alpha1/namespaces"


@pytest.fixture
def evil_realm(realm_factory) -> dict[str, Any]:
    data = realm_factory.variant()
    data["roles"]["realm"] += [{"name": f"{kind}:evil"} for kind in ("it", "img", "ds")]
    data["groups"].append(
        {
            "name": GROUP,
            "path": f"/{GROUP}",
            "attributes": {
                "displayName": [PAYLOADS["group display name"]],
                "quota-cpu": ["2"],
                "enabled-shared-volume": ["true"],  # no claim exists: a warning names the group
                "shared-volume-capacity": ["1"],
            },
            "realmRoles": ["it:evil", "img:evil", "ds:evil"],
        }
    )
    envs = [{"name": "GREETING", "value": PAYLOADS["user attribute"]}]
    add_user(data, "mallory", [f"/{GROUP}"], attributes={"predefinedEnvs": [json.dumps(envs)]})
    return data


async def create_catalog(kube, namespace: str) -> None:
    resources = {
        "instancetypes": {
            "displayName": PAYLOADS["instance type display name"],
            "description": PAYLOADS["instance type description"],
            "limits": {"cpu": 1, "memory": "1G"},
        },
        "images": {
            "displayName": PAYLOADS["image display name"],
            "description": PAYLOADS["image description"],
            "type": "both",
            "url": "quay.io/jupyter/base-notebook:2025-01-01",
        },
        "datasets": {  # a pv dataset whose claim is missing: a launch warning names it
            "displayName": PAYLOADS["dataset display name"],
            "description": PAYLOADS["dataset description"],
            "type": "pv",
            "volumeName": "evil",
        },
    }
    kinds = {"instancetypes": "InstanceType", "images": "Image", "datasets": "Dataset"}
    for plural, spec in resources.items():
        body = {
            "apiVersion": "primehub.io/v1alpha1",
            "kind": kinds[plural],
            "metadata": {"name": "evil"},
            "spec": spec,
        }
        await kube.post(f"{CRD_API}/{namespace}/{plural}", body)


@pytest.mark.reliability("injection", cases=len(PAYLOADS) + 1)
async def test_markup_from_keycloak_and_the_catalog_is_inert(
    browser, hub_factory, evil_realm, kube, namespace
):
    await create_catalog(kube, namespace)
    # The server answers a few seconds after its pod runs: time to read the spawn-pending page.
    hub = hub_factory(
        evil_realm, cmd=["/bin/sh", "-c", f"sleep 4; exec {sys.executable} -m http.server 8888"]
    )
    page = await logged_in_page(browser, hub.url, "mallory")
    dialogs: list[str] = []

    async def record(dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", record)

    await page.goto(f"{hub.url}/hub/spawn")
    await choose_group(page, GROUP)
    form_text = await page.locator("#spawn_form").inner_text()
    await page.click("summary")  # the environment rows
    greeting = await page.locator('.primehub-env-row input[name="env_value"]').first.input_value()
    await page.locator("#spawn_form [type=submit]").click()

    async def progress_shows_the_warnings() -> str:
        text = await page.evaluate(
            "document.body ? document.body.textContent : ''"
        )  # the collapsed event log too
        return text if "is not mounted" in text else ""

    pending_text = await eventually(progress_shows_the_warnings, timeout=30, interval=0.2)

    # The pending page goes to the server once it is ready; going home before that would race
    # its redirect (a navigation interrupted by another).
    await page.wait_for_url(f"{hub.url}/user/mallory/**", timeout=60_000)
    await page.goto(f"{hub.url}/hub/home")
    badge = await page.locator(".primehub-launch-group").first.inner_text()

    assert dialogs == []  # no payload ran, on any page
    for what in ("group display name", "instance type display name", "image display name"):
        assert PAYLOADS[what].strip() in form_text, what
    for what in ("instance type description", "image description", "dataset description"):
        assert PAYLOADS[what] in form_text, what
    assert greeting == PAYLOADS["user attribute"]
    assert PAYLOADS["group display name"].strip() in pending_text  # the shared-volume warning
    assert PAYLOADS["dataset display name"] in pending_text  # the missing claim's warning
    assert badge == f"running in {GROUP}"
    injected = await page.locator("img[src=x], svg[onload], iframe[srcdoc]").count()
    assert injected == 0
    _, model = hub.api("GET", "users/mallory")
    assert model["servers"][""]["user_options"]["group"] == GROUP
