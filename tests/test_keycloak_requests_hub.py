"""What a spawn costs Keycloak with the default settings, counted from Keycloak's own metrics:
userinfo (and a token when the access token has expired), no admin call while the user's groups
and roles are unchanged — and a group or role removed in Keycloak still counts at the next spawn."""

from __future__ import annotations

import asyncio

import pytest

from devstack.keycloak import RequestCounter
from devstack.testing import eventually
from tests.hub_stack import keycloak_admin, log_in

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def spawn(hub, server: str, group: str, instance_type: str) -> tuple[int, dict]:
    body = {"user_options": {"group": group, "instance_type": instance_type}}
    return await asyncio.to_thread(hub.api, "POST", f"users/alice/servers/{server}", body)


async def ready(hub, server: str) -> bool:
    _, model = await asyncio.to_thread(hub.api, "GET", "users/alice")
    return bool(model["servers"].get(server, {}).get("ready"))


def requests(counter: RequestCounter) -> tuple[int, int]:
    """Admin and other (OIDC) requests since the counter's mark."""
    since = counter.since()
    admin = sum(n for (_, uri), n in since.items() if uri.startswith("/admin/"))
    return admin, sum(since.values()) - admin


async def test_a_spawn_asks_keycloak_for_userinfo_only_and_removals_still_count(
    hub_factory, keycloak
):
    hub = hub_factory()
    await log_in(hub, "alice")
    status, body = await spawn(hub, "warm", "ml-team", "cpu-1")  # caches warm up
    assert status in (201, 202), body
    await eventually(lambda: ready(hub, "warm"), timeout=60, interval=0.3)

    counter = await asyncio.to_thread(RequestCounter, keycloak)
    for server in ("one", "two"):
        status, body = await spawn(hub, server, "ml-team", "cpu-1")
        assert status in (201, 202), body
        await eventually(lambda s=server: ready(hub, s), timeout=60, interval=0.3)
    admin, oidc = await asyncio.to_thread(requests, counter)
    assert admin == 0, "an unchanged user needs no admin call"
    assert admin + oidc <= 2 * 2, (admin, oidc)  # at most two requests a spawn

    kc = keycloak_admin(hub.realm)
    alice = kc.get_user_id("alice")
    await asyncio.to_thread(kc.group_user_remove, alice, kc.get_group_by_path("/ml-team")["id"])
    status, body = await spawn(hub, "gone", "ml-team", "cpu-1")
    assert status == 400 and "group" in body["message"], body

    await asyncio.sleep(11)  # past refused_launch_refresh_interval: the next spawn refreshes
    phusers = kc.get_group_by_path("/phusers")
    cpu_2 = kc.get_realm_role("it:cpu-2")
    await asyncio.to_thread(kc.delete_group_realm_roles, phusers["id"], [cpu_2])
    status, body = await spawn(hub, "role", "phusers", "cpu-2")
    assert status == 400 and "instance_type" in body["message"], body


async def test_without_the_userinfo_claims_every_spawn_reads_the_admin_api(
    hub_factory, keycloak, realm_factory
):
    realm = realm_factory.variant()
    client = next(c for c in realm["clients"] if c["clientId"] == "jupyterhub")
    client.pop("protocolMappers")  # a realm set up before the mappers
    hub = hub_factory(realm)
    await log_in(hub, "alice")
    status, body = await spawn(hub, "warm", "ml-team", "cpu-1")
    assert status in (201, 202), body
    await eventually(lambda: ready(hub, "warm"), timeout=60, interval=0.3)
    counter = await asyncio.to_thread(RequestCounter, keycloak)
    status, body = await spawn(hub, "one", "ml-team", "cpu-1")
    assert status in (201, 202), body
    admin, _ = await asyncio.to_thread(requests, counter)
    assert admin == 3  # the user, her groups, her effective roles: still correct, slower
    kc = keycloak_admin(hub.realm)
    await asyncio.to_thread(
        kc.group_user_remove, kc.get_user_id("alice"), kc.get_group_by_path("/ml-team")["id"]
    )
    status, body = await spawn(hub, "gone", "ml-team", "cpu-1")
    assert status == 400 and "group" in body["message"], body


async def test_unchanged_groups_keep_attributes_only_for_the_refresh_interval(
    hub_factory, keycloak
):
    hub = hub_factory(attribute_refresh_interval=2.0)
    await log_in(hub, "alice")
    counter = await asyncio.to_thread(RequestCounter, keycloak)
    await asyncio.sleep(2.5)  # the attributes read at login are now too old
    status, body = await spawn(hub, "one", "ml-team", "cpu-1")
    assert status in (201, 202), body
    admin, _ = await asyncio.to_thread(requests, counter)
    assert admin == 3, "attributes older than the interval are read again"


async def test_a_spawn_after_the_access_token_expired_renews_it_and_keeps_each_token_once(
    hub_factory, realm_factory
):
    """The refresh token (kept once, at the top of the auth state) renews an expired access token
    (kept once, in ``token_response``, where OAuthenticator's refresh reads it) — also after
    refreshes that reused the access token while it was valid."""
    realm = realm_factory.variant()
    realm["accessTokenLifespan"] = 10
    hub = hub_factory(realm)
    await log_in(hub, "alice")
    issued = asyncio.get_running_loop().time()
    _, model = await asyncio.to_thread(hub.api, "GET", "users/alice")
    before = model["auth_state"]
    status, body = await spawn(hub, "early", "ml-team", "cpu-1")  # the access token still valid
    assert status in (201, 202), body
    assert "Refreshing oauth access token" not in hub.full_log()
    _, model = await asyncio.to_thread(hub.api, "GET", "users/alice")
    assert model["auth_state"] == before  # the stored refresh and ID tokens kept
    await asyncio.sleep(max(0.0, issued + 12 - asyncio.get_running_loop().time()))
    status, body = await spawn(hub, "late", "ml-team", "cpu-1")
    assert status in (201, 202), body
    _, model = await asyncio.to_thread(hub.api, "GET", "users/alice")
    after = model["auth_state"]
    renewed = after["token_response"]["access_token"]
    assert renewed != before["token_response"]["access_token"]
    assert "access_token" not in after and "oauth_user" not in after
    assert after["refresh_token"] and after["id_token"]
    assert "Refreshing oauth access token for alice" in hub.full_log()
