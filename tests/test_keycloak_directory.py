"""The launch context as read from real Keycloak's admin API: content, cost, freshness, failures."""

from __future__ import annotations

import asyncio
import re

import pytest

from devstack.keycloak import RequestCounter
from devstack.realms import Realm, group, service_account
from primehub_spawner.keycloak import IdentityServiceError
from primehub_spawner.options import LaunchRequest, decide
from primehub_spawner.volumes import compose_volumes
from tests.hub_stack import directory_for, keycloak_admin, realm_with_twins
from tests.test_isolation import CATALOG

ADMIN_TOKEN = {"resource_access": {"realm-management": {"roles": ["realm-admin", "view-users"]}}}


directory = directory_for


def user_id(realm: Realm, username: str) -> str:
    return keycloak_admin(realm).get_user_id(username)


async def test_alices_launch_context(realm):
    keycloak = directory(realm)
    context = await keycloak.launch_context(user_id(realm, "alice"), {})
    assert [g.name for g in context.groups] == ["ml-team", "phusers"]
    ml = context.group("ml-team")
    assert ml.display_name == "ML Team"
    assert (ml.user_quota.cpu, ml.user_quota.gpu, ml.user_quota.memory) == (4.0, 1, 8 * 10**9)
    assert ml.group_quota.gpu == 1
    assert ml.shared_volume is not None and ml.shared_volume.capacity == "1Gi"
    assert set(ml.grants.instance_types) == {"cpu-2", "gpu-1"}
    assert set(ml.grants.images) == {"pytorch", "building", "broken-notebook"}
    assert dict(ml.grants.datasets) == {
        "mnist": False,
        "scratch": True,
        "ml-env": False,
        "corpus": False,
        "recipes": False,
    }
    assert context.global_group.name == "everyone"
    assert set(context.global_group.grants.instance_types) == {"cpu-1"}
    assert dict(context.global_group.grants.datasets) == {"docs": False}
    assert (context.user.username, context.user.volume_capacity, context.user.timezone) == (
        "alice",
        "5Gi",
        "Asia/Taipei",
    )
    assert context.user.admin is False
    await keycloak.close()


async def test_admin_flag_follows_the_admin_role(realm):
    keycloak = directory(realm)
    phadmin = user_id(realm, "phadmin")
    assert (await keycloak.launch_context(phadmin, ADMIN_TOKEN)).user.admin is True
    assert (
        await keycloak.launch_context(phadmin, {})
    ).user.admin is False  # the token decides a client role
    realm_role_admin = directory(realm, admin_role="img:datascience")  # any realm role works too
    assert (await realm_role_admin.launch_context(phadmin, {})).user.admin is True
    await keycloak.close()
    await realm_role_admin.close()


async def test_user_with_only_the_global_group(realm):
    context = await directory(realm).launch_context(user_id(realm, "dave"), {})
    assert context.groups == ()
    assert set(context.global_group.grants.images) == {"base-notebook"}


async def test_role_prefix(realm_factory):
    variant = realm_factory.variant()
    variant["roles"]["realm"] += [{"name": "ph:it:big"}]
    group(variant, "ml-team")["realmRoles"].append("ph:it:big")
    server = realm_factory.create(variant)
    context = await directory(server, role_prefix="ph").launch_context(user_id(server, "bob"), {})
    assert set(context.group("ml-team").grants.instance_types) == {"big"}


async def test_admin_calls_per_login_stay_bounded(realm_factory, keycloak):
    variant = realm_factory.variant()
    variant["users"] += [
        {
            "username": f"user{i:02}",
            "enabled": True,
            "groups": ["/everyone", "/ml-team", "/phusers"],
        }
        for i in range(50)
    ]
    server = realm_factory.create(variant)
    kc = keycloak_admin(server)
    ids = [kc.get_user_id(f"user{i:02}") for i in range(50)]
    directory_ = directory(server)
    requests = RequestCounter(keycloak)
    await asyncio.gather(*(directory_.launch_context(uid, {}) for uid in ids))
    # 3 per login, plus one read of each group's roles (ml-team, phusers, everyone) for all 50
    # (and the realm's user profile and its top-level groups, once)
    assert requests.admin == 3 * 50 + 3 + 2, requests.since()
    listings = [
        uri for (_, uri) in requests.since() if re.fullmatch(r"/admin/realms/[^/]+/groups", uri)
    ]
    assert len(listings) == 1 and requests.since()[("GET", listings[0])] == 1, requests.since()
    requests.reset()
    await directory_.launch_context(ids[0], {})
    assert requests.admin == 3  # warm cache: groups cost nothing
    await directory_.close()


async def test_removals_count_at_once_additions_within_the_cache_lifetime(realm):
    kc = keycloak_admin(realm)
    keycloak = directory(realm, group_cache_ttl=0.5)
    bob = user_id(realm, "bob")
    ml_team = kc.get_group_by_path("/ml-team")
    assert (
        "gpu-1" in (await keycloak.launch_context(bob, {})).group("ml-team").grants.instance_types
    )
    gpu_role = kc.get_realm_role("it:gpu-1")
    kc.delete_group_realm_roles(ml_team["id"], [gpu_role])
    assert (
        "gpu-1"
        not in (await keycloak.launch_context(bob, {})).group("ml-team").grants.instance_types
    )
    kc.assign_group_realm_roles(ml_team["id"], [gpu_role])
    await asyncio.sleep(0.6)
    assert (
        "gpu-1" in (await keycloak.launch_context(bob, {})).group("ml-team").grants.instance_types
    )
    kc.group_user_remove(bob, ml_team["id"])
    assert (await keycloak.launch_context(bob, {})).groups == ()
    await keycloak.close()


async def test_a_service_account_without_admin_roles_is_a_clear_error(realm_factory):
    variant = realm_factory.variant()
    service_account(variant)["clientRoles"] = {}
    server = realm_factory.create(variant)
    with pytest.raises(IdentityServiceError) as raised:
        await directory(server).launch_context("some-id", {})
    assert "Keycloak admin API: reading the user" in str(raised.value)
    assert "HTTP 403" in str(raised.value)


async def test_an_unreachable_keycloak_is_a_clear_error(realm, keycloak_proxy):
    keycloak_proxy.disable()
    with pytest.raises(IdentityServiceError, match="Keycloak admin API: reading the user"):
        await directory(realm.via(keycloak_proxy.url), timeout=2).launch_context("some-id", {})


async def test_only_the_async_transport_is_used(realm, monkeypatch):
    """python-keycloak's sync methods go through requests and would block the hub's loop."""
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError("a blocking requests call was made")

    keycloak = directory(realm)
    alice = await asyncio.to_thread(user_id, realm, "alice")  # the test's own, sync lookup
    monkeypatch.setattr(requests.Session, "send", refuse)
    context = await keycloak.launch_context(alice, {})
    assert context.user.username == "alice"
    await keycloak.close()


async def test_composite_roles_and_parent_groups_are_expanded(realm_factory):
    variant = realm_factory.variant()
    variant["roles"]["realm"].append(
        {
            "name": "vision-kit",
            "composite": True,
            "composites": {"realm": ["it:gpu-1", "ds:rw:scratch"]},
        }
    )
    vision = group(variant, "vision")
    vision["realmRoles"].append("vision-kit")
    vision["subGroups"] = [
        {"name": "interns", "path": "/vision/interns", "realmRoles": ["img:datascience"]}
    ]
    variant["users"].append({"username": "erin", "enabled": True, "groups": ["/vision/interns"]})
    server = realm_factory.create(variant)
    keycloak = directory(server)
    carol = (await keycloak.launch_context(user_id(server, "carol"), {})).group("vision").grants
    assert set(carol.instance_types) == {"gpu-1"} and dict(carol.datasets) == {
        "imagenet-mini": False,
        "scratch": True,
    }
    erin = (await keycloak.launch_context(user_id(server, "erin"), {})).group("interns").grants
    assert set(erin.images) == {"opencv", "datascience"}  # its own roles and its parent's
    assert set(erin.instance_types) == {"gpu-1"}
    await keycloak.close()


def group_data(context, group_name: str) -> set[str]:
    """The group claims and PHFS folders of a launch in ``group_name``."""
    pod = compose_volumes(decide(LaunchRequest(group=group_name), context, CATALOG), context)
    claims = {c for c in pod.claims if c.startswith("project-")}
    return claims | {f"phfs:{m['subPath']}" for m in pod.mounts if "subPath" in m}


@pytest.mark.reliability("isolation", cases=2)
async def test_groups_that_share_a_name_get_no_shared_data(realm_factory):
    """bob (ml-team), erin (ML_Team) and frank (/x/ml-team) reach no common claim or PHFS folder;
    a top-level group created since the listing was read counts at its member's first login."""
    server = realm_factory.create(realm_with_twins(realm_factory))
    keycloak = directory(server)
    launches = {}
    for username, group_name in (("bob", "ml-team"), ("erin", "ML_Team"), ("frank", "ml-team")):
        context = await keycloak.launch_context(user_id(server, username), {})
        launches[username] = group_data(context, group_name)
    for one, other in (("bob", "erin"), ("bob", "frank"), ("erin", "frank")):
        assert not launches[one] & launches[other], launches
    carol = user_id(server, "carol")
    assert group_data(await keycloak.launch_context(carol, {}), "vision") == {"phfs:groups/vision"}

    kc = keycloak_admin(server)
    twin = kc.create_group({"name": "Vision"})
    kc.create_user({"username": "gina", "enabled": True})
    gina = kc.get_user_id("gina")
    kc.group_user_add(gina, twin)
    assert group_data(await keycloak.launch_context(gina, {}), "Vision") == set()
    assert group_data(await keycloak.launch_context(carol, {}), "vision") == set()
    await keycloak.close()
