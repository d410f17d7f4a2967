"""Working as a group in Chromium: sharing from the home page and opening a shared server, the
Notebooks admin page, and the Server Options form's live quota. Every group display name here
carries markup that would call ``alert()``; any dialog fails the test, and the names must show
as text."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from devstack.testing import eventually
from tests.browsers import choose_group, logged_in_page
from tests.hub_stack import log_in, realm_with

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.browser]

SINGLEUSER = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
TEAM = "<img src=x onerror=alert('team')> ML & Co"
VISION = "<svg onload=alert('vision')> Vision"
SHARING = "from primehub_spawner import sharing\nsharing.enable_group_sharing(c)"
INSTANCE_TYPE = "<img src=x onerror=alert('it')> CPU 2"
IMAGE = "<svg onload=alert('image')> Datascience"
CRD_API = "/apis/primehub.io/v1alpha1/namespaces"


@pytest.fixture
def hostile_realm(realm_factory):
    return realm_with(realm_factory, ml_team={"displayName": TEAM}, vision={"displayName": VISION})


async def launch(hub, user: str, server: str, group: str, instance_type: str, **options) -> None:
    """Launch for ``user``, who has logged in."""
    body = {"user_options": {"group": group, "instance_type": instance_type, **options}}
    path = f"users/{user}/servers/{server}" if server else f"users/{user}/server"
    status, answer = await asyncio.to_thread(hub.api, "POST", path, body)
    assert status in (201, 202), answer

    async def ready() -> bool:
        _, model = await asyncio.to_thread(hub.api, "GET", f"users/{user}")
        return bool(model["servers"].get(server, {}).get("ready"))

    await eventually(ready, timeout=120, interval=0.5)


async def watched_page(browser, hub, user: str, dialogs: list[str]):
    page = await logged_in_page(browser, hub.url, user)

    async def record(dialog) -> None:
        dialogs.append(f"{user}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", record)
    return page


async def no_markup_ran(page) -> None:
    assert await page.locator("img[src=x], svg[onload]").count() == 0


@pytest.mark.reliability("injection", cases=2)
async def test_share_from_the_home_page_and_open_the_shared_server(
    browser, hub_factory, hostile_realm
):
    hub = hub_factory(hostile_realm, cmd=SINGLEUSER, extra_config=SHARING)
    await log_in(hub, "alice")
    await launch(hub, "alice", "team", "ml-team", "cpu-2", image="base-notebook")
    dialogs: list[str] = []
    alice = await watched_page(browser, hub, "alice", dialogs)
    await alice.goto(f"{hub.url}/hub/home")
    share = alice.locator('tr[data-server-name="team"] .primehub-share')
    assert await share.inner_text() == f"Share with {TEAM}"
    await share.click()
    await alice.wait_for_selector('tr[data-server-name="team"] .primehub-share.btn-warning')
    assert await share.inner_text() == f"Stop sharing with {TEAM}"

    bob = await watched_page(browser, hub, "bob", dialogs)
    await bob.goto(f"{hub.url}/hub/home")
    row = bob.locator("tr.primehub-shared-server")
    assert await row.count() == 1
    assert await row.locator(".primehub-shared-owner").inner_text() == "alice"
    assert await row.locator(".primehub-shared-group").inner_text() == TEAM.strip()
    await row.locator("a.primehub-shared-link").click()
    await bob.wait_for_selector("text=Authorize")  # JupyterHub asks before opening another's server
    await bob.click("button[type=submit]")
    await bob.wait_for_url(f"{hub.url}/user/alice/team/**", timeout=60_000)
    await bob.wait_for_selector("#jp-main-dock-panel", timeout=60_000)  # JupyterLab, alice's

    carol = await watched_page(browser, hub, "carol", dialogs)
    await carol.goto(f"{hub.url}/hub/home")
    assert await carol.locator("tr.primehub-shared-server").count() == 0
    assert (
        "No group member shares a server with you."
        in await carol.locator("#primehub-shared-with-me").inner_text()
    )
    answer = await carol.goto(f"{hub.url}/user/alice/team/lab")
    assert answer.status == 403

    await alice.reload()
    await share.click()
    await alice.wait_for_selector('tr[data-server-name="team"] .primehub-share.btn-outline-primary')
    await bob.goto(f"{hub.url}/hub/home")
    assert await bob.locator("tr.primehub-shared-server").count() == 0
    for page in (alice, bob, carol):
        await no_markup_ran(page)
    assert dialogs == []


@pytest.mark.reliability("injection", cases=3)
async def test_the_notebooks_admin_page_lists_filters_and_stops(
    browser, hub_factory, hostile_realm, kube, namespace
):
    for plural, name, display in (
        ("instancetypes", "cpu-2", INSTANCE_TYPE),
        ("images", "base-notebook", IMAGE),
    ):
        await kube.patch(
            f"{CRD_API}/{namespace}/{plural}/{name}", {"spec": {"displayName": display}}
        )
    hub = hub_factory(hostile_realm)
    await log_in(hub, "alice", "bob", "carol")
    await launch(hub, "alice", "team", "ml-team", "cpu-2", image="base-notebook")
    await launch(hub, "bob", "", "ml-team", "cpu-1")
    await launch(hub, "carol", "eyes", "vision", "cpu-1")
    dialogs: list[str] = []
    admin = await watched_page(browser, hub, "phadmin", dialogs)
    await admin.goto(f"{hub.url}/hub/home")
    await admin.click("a.nav-link:text('Notebooks')")
    await admin.wait_for_selector("#primehub-notebooks")
    rows = admin.locator("tr.primehub-server")
    assert await rows.count() == 3
    by_owner = {}
    for index in range(3):
        row = rows.nth(index)
        by_owner[await row.locator(".primehub-owner").inner_text()] = row
    carol_row = by_owner["carol"]
    assert await carol_row.locator(".primehub-group").inner_text() == VISION.strip()
    assert await carol_row.locator(".primehub-server-name").inner_text() == "eyes"
    assert await by_owner["bob"].locator(".primehub-server-name").inner_text() == "(default)"
    assert await by_owner["alice"].locator(".primehub-instance-type").inner_text() == INSTANCE_TYPE
    assert await by_owner["alice"].locator(".primehub-image").inner_text() == IMAGE
    totals = admin.locator("table.primehub-group-totals tbody tr")
    texts = [await totals.nth(i).inner_text() for i in range(await totals.count())]
    team_total = next(t for t in texts if t.startswith(TEAM.strip()))
    assert "\t2\t" in team_total  # two servers in ML Team
    assert "3 / 4" not in team_total  # the group quota is unlimited on CPU: ∞
    assert "/ ∞" in team_total

    await admin.select_option("#primehub-group-filter", "vision")
    await admin.wait_for_url("**/primehub/notebooks?group=vision")
    assert await rows.count() == 1
    await rows.first.locator(".primehub-stop").click()
    await admin.wait_for_selector("tr.primehub-stopped")

    async def carol_stopped() -> bool:
        _, model = await asyncio.to_thread(hub.api, "GET", "users/carol")
        return "eyes" not in model["servers"]

    await eventually(carol_stopped, timeout=60, interval=0.5)
    await admin.reload()
    assert await rows.count() == 0
    await no_markup_ran(admin)

    alice = await watched_page(browser, hub, "alice", dialogs)
    answer = await alice.goto(f"{hub.url}/hub/primehub/notebooks")
    assert answer.status == 403
    assert await alice.locator("a.nav-link:text('Notebooks')").count() == 0
    assert dialogs == []


async def test_the_open_form_follows_the_groups_quota_without_keycloak(
    browser, hub_factory, keycloak_proxy
):
    hub = hub_factory(
        proxy=keycloak_proxy, extra_config="c.PrimeHubSpawner.quota_refresh_interval = 1"
    )
    await log_in(hub, "bob")
    alice = await logged_in_page(browser, hub.url, "alice")
    await alice.goto(f"{hub.url}/hub/spawn/alice/next")
    await choose_group(alice, "ml-team")
    section = alice.locator('fieldset.primehub-group[data-group="ml-team"]')
    gpu = section.locator('input[value="gpu-1"]')
    assert await gpu.is_enabled()
    keycloak_proxy.disable()  # whatever the form does now, it does without Keycloak
    try:
        await launch(hub, "bob", "", "ml-team", "gpu-1")

        async def group_quota_row() -> str:
            text = await section.locator(".primehub-group-quota").inner_text()
            return text if "1 / 1" in text else ""

        assert "1 / 1" in await eventually(group_quota_row, timeout=15, interval=0.3)
        assert await gpu.is_disabled()
        note = section.locator(".primehub-over-quota")
        assert "GPU: 1 allowed, 1 in use, 1 requested" in await note.first.inner_text()
        status, _ = await asyncio.to_thread(hub.api, "DELETE", "users/bob/server")
        assert status in (202, 204)

        async def gpu_free_again() -> bool:
            return await gpu.is_enabled()

        await eventually(gpu_free_again, timeout=60, interval=0.3)
        assert await section.locator(".primehub-over-quota").count() == 0
    finally:
        keycloak_proxy.replace()
