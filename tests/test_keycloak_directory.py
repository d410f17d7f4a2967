"""The launch context as read from the identity server's admin API: content, cost, freshness, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from devstack.testing import DEMO_REALM
from primehub_spawner.keycloak import IdentityServiceError, KeycloakDirectory
from tests.hub_stack import DEMO_CLIENT_SECRET, keycloak_admin

ADMIN_TOKEN = {"resource_access": {"realm-management": {"roles": ["realm-admin", "view-users"]}}}


def directory(server, **options) -> KeycloakDirectory:
    options.setdefault("client_secret", DEMO_CLIENT_SECRET)
    return KeycloakDirectory(server.url, server.realm, "jupyterhub", **options)


def user_id(server, username: str) -> str:
    return keycloak_admin(server).get_user_id(username)


async def test_alices_launch_context(identity_server):
    keycloak = directory(identity_server)
    context = await keycloak.launch_context(user_id(identity_server, "alice"), {})
    assert [g.name for g in context.groups] == ["ml-team", "phusers"]
    ml = context.group("ml-team")
    assert ml.display_name == "ML Team"
    assert (ml.user_quota.cpu, ml.user_quota.gpu, ml.user_quota.memory) == (4.0, 1, 8 * 10**9)
    assert ml.group_quota.gpu == 1
    assert ml.shared_volume is not None and ml.shared_volume.capacity == "1Gi"
    assert set(ml.grants.instance_types) == {"cpu-2", "gpu-1"}
    assert set(ml.grants.images) == {"pytorch", "building"}
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


async def test_admin_flag_follows_the_admin_role(identity_server):
    keycloak = directory(identity_server)
    phadmin = user_id(identity_server, "phadmin")
    assert (await keycloak.launch_context(phadmin, ADMIN_TOKEN)).user.admin is True
    assert (
        await keycloak.launch_context(phadmin, {})
    ).user.admin is False  # the token decides a client role
    realm_role_admin = directory(
        identity_server, admin_role="img:datascience"
    )  # any realm role works too
    assert (await realm_role_admin.launch_context(phadmin, {})).user.admin is True
    await keycloak.close()
    await realm_role_admin.close()


async def test_user_with_only_the_global_group(identity_server):
    context = await directory(identity_server).launch_context(user_id(identity_server, "dave"), {})
    assert context.groups == ()
    assert set(context.global_group.grants.images) == {"base-notebook"}


async def test_role_prefix(identity_server_factory, tmp_path):
    realm = yaml.safe_load(DEMO_REALM.read_text())
    realm["roles"]["realm"] += [{"name": "ph:it:big"}]
    realm["groups"][2]["realmRoles"].append("ph:it:big")  # ml-team
    realm_file = tmp_path / "realm.yaml"
    realm_file.write_text(yaml.safe_dump(realm))
    server = identity_server_factory(realm_file)
    context = await directory(server, role_prefix="ph").launch_context(user_id(server, "bob"), {})
    assert set(context.group("ml-team").grants.instance_types) == {"big"}


def _many_users_realm(tmp_path: Path, count: int) -> Path:
    realm = yaml.safe_load(DEMO_REALM.read_text())
    realm["users"] += [
        {"username": f"user{i:02}", "password": "x", "groups": ["/ml-team", "/phusers"]}
        for i in range(count)
    ]
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(realm))
    return path


async def test_admin_calls_per_login_stay_bounded(identity_server_factory, tmp_path):
    server = identity_server_factory(_many_users_realm(tmp_path, 50))
    keycloak = directory(server)
    ids = [user_id(server, f"user{i:02}") for i in range(50)]
    server.reset_stats()
    await asyncio.gather(*(keycloak.launch_context(uid, {}) for uid in ids))
    stats = server.stats()
    # 3 per login, plus one read of each group's roles (ml-team, phusers, everyone) for all 50
    assert stats["admin"] == 3 * 50 + 3, stats["by_path"]
    server.reset_stats()
    await keycloak.launch_context(ids[0], {})
    assert server.stats()["admin"] == 3  # warm cache: groups cost nothing
    await keycloak.close()


async def test_removals_count_at_once_additions_within_the_cache_lifetime(identity_server):
    kc = keycloak_admin(identity_server)
    keycloak = directory(identity_server, group_cache_ttl=0.5)
    bob = user_id(identity_server, "bob")
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


async def test_a_service_account_without_admin_roles_is_a_clear_error(
    identity_server_factory, tmp_path
):
    realm = yaml.safe_load(DEMO_REALM.read_text())
    realm["clients"][0]["serviceAccountClientRoles"] = {}
    realm_file = tmp_path / "no-roles.yaml"
    realm_file.write_text(yaml.safe_dump(realm))
    server = identity_server_factory(realm_file)
    with pytest.raises(IdentityServiceError) as raised:
        await directory(server).launch_context("some-id", {})
    assert "Keycloak admin API: reading the user" in str(raised.value)
    assert "HTTP 403" in str(raised.value)


async def test_an_unreachable_identity_server_is_a_clear_error(identity_server):
    identity_server.stop()
    with pytest.raises(IdentityServiceError, match="Keycloak admin API: reading the user"):
        await directory(identity_server, timeout=2).launch_context("some-id", {})


async def test_only_the_async_transport_is_used(identity_server, monkeypatch):
    """python-keycloak's sync methods go through requests and would block the hub's loop."""
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError("a blocking requests call was made")

    keycloak = directory(identity_server)
    alice = await asyncio.to_thread(
        user_id, identity_server, "alice"
    )  # the test's own, sync lookup
    monkeypatch.setattr(requests.Session, "send", refuse)
    context = await keycloak.launch_context(alice, {})
    assert context.user.username == "alice"
    await keycloak.close()


async def test_composite_roles_and_parent_groups_are_expanded(identity_server_factory, tmp_path):
    realm = yaml.safe_load(DEMO_REALM.read_text())
    realm["roles"]["realm"].append(
        {"name": "vision-kit", "composites": {"realm": ["it:gpu-1", "ds:rw:scratch"]}}
    )
    vision = next(g for g in realm["groups"] if g["name"] == "vision")
    vision["realmRoles"].append("vision-kit")
    vision["subGroups"] = [{"name": "interns", "realmRoles": ["img:datascience"]}]
    realm["users"].append({"username": "erin", "password": "erin", "groups": ["/vision/interns"]})
    realm_file = tmp_path / "composites.yaml"
    realm_file.write_text(yaml.safe_dump(realm))
    server = identity_server_factory(realm_file)
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
