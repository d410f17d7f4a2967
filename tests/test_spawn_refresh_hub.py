"""The refresh at every spawn runs alongside the spawn's preparation (``refresh_alongside_spawn``):
the launch is checked and its claims read while Keycloak answers, nothing is created before it
has, and what the refresh changed decides the launch (the refresh-first order's outcome)."""

from __future__ import annotations

import asyncio
import html

import pytest

from devstack.cluster import audited
from devstack.testing import eventually
from tests.hub_stack import browser_session, keycloak_admin, log_in, pods, xsrf

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

HELD = 120  # seconds Keycloak's answers are held back: far longer than the test waits


async def claim_reads(test_ground, namespace: str, since: int) -> list[str]:
    """The claims read by name in ``namespace`` after the first ``since`` audit events."""
    return [
        event["objectRef"]["name"]
        for event in audited(
            test_ground.cluster.audit_events()[since:],
            "get",
            resource="persistentvolumeclaims",
            namespace=namespace,
        )
        if event["user"]["username"] == "admin"  # the hub's identity, not the kubelet's
    ]


async def test_the_launch_is_prepared_while_keycloak_answers_and_created_after(
    hub_factory, keycloak_proxy, test_ground, kube, namespace
):
    hub = hub_factory(proxy=keycloak_proxy)
    await log_in(hub, "alice")
    since = len(test_ground.cluster.audit_events())
    toxic = keycloak_proxy.latency(HELD)  # the spawn's userinfo gets no answer meanwhile
    body = {"user_options": {"group": "ml-team", "instance_type": "cpu-1"}}

    async def has_read(claim: str) -> bool:
        return claim in await claim_reads(test_ground, namespace, since)

    spawn = asyncio.ensure_future(asyncio.to_thread(hub.api, "POST", "users/alice/server", body))
    try:
        await eventually(
            lambda: has_read("claim-alice"),
            timeout=30,
            what="the launch's claims read while the refresh waits for Keycloak",
        )
        assert not spawn.done()
        assert await pods(kube, namespace) == []  # nothing created before the refresh answers
    finally:
        keycloak_proxy.remove_toxic(toxic)  # the held answer goes through
    status, answer = await spawn
    assert status in (201, 202), answer
    assert [p["metadata"]["name"] for p in await pods(kube, namespace)] == ["jupyter-alice"]


async def test_a_group_joined_since_login_launches_at_once(hub_factory, kube, namespace):
    """Prepared from the stored context (no such group), refused; the refresh brings the group,
    and the launch prepared again from it goes ahead."""
    hub = hub_factory()
    await log_in(hub, "bob")  # bob's only group is ml-team
    admin = keycloak_admin(hub.realm)
    await asyncio.to_thread(
        admin.group_user_add, admin.get_user_id("bob"), admin.get_group_by_path("/phusers")["id"]
    )
    body = {"user_options": {"group": "phusers", "instance_type": "cpu-1"}}
    status, answer = await asyncio.to_thread(hub.api, "POST", "users/bob/server", body)
    assert status in (201, 202), answer
    assert [p["metadata"]["name"] for p in await pods(kube, namespace)] == ["jupyter-bob"]
    assert hub.api("GET", "users/bob")[1]["groups"] == ["ml-team", "phusers"]


@pytest.mark.reliability("access")
async def test_a_login_ended_in_keycloak_is_a_403_and_no_pod(hub_factory, kube, namespace):
    """Her own launch from the form, after Keycloak ended her session: the refresh says she must
    log in again, which is JupyterHub's 403 — and nothing is created meanwhile."""
    hub = hub_factory()
    async with browser_session(hub, "alice") as http:
        page = (await http.get(f"{hub.url}/hub/spawn")).text
        admin = keycloak_admin(hub.realm)
        await asyncio.to_thread(admin.user_logout, admin.get_user_id("alice"))
        fields = {"_xsrf": xsrf(page), "group": "ml-team", "instance_type": "cpu-1"}
        response = await http.post(f"{hub.url}/hub/spawn", data=fields)
    assert response.status_code == 403, response.text[-2000:]
    assert "auth has expired for alice, login again" in html.unescape(response.text)
    assert await pods(kube, namespace) == []
    assert hub.api("GET", "users/alice")[1]["servers"] == {}
