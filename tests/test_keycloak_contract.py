"""The plugin's calls against real Keycloak, as the README documents them: the service-account roles
each admin call needs (and the error without them), attributes that round-trip, the user profile
that keeps them (and the warning when it does not), the limit on environment presets."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from keycloak.exceptions import KeycloakPutError

from devstack.realms import (
    RealmFactory,
    add_user,
    group,
    service_account,
    set_user_profile,
    user,
    user_profile,
)
from primehub_spawner.keycloak import (
    READ_ROLE,
    SERVICE_ACCOUNT_ROLES,
    WRITE_ROLE,
    IdentityServiceError,
)
from primehub_spawner.user_profile import ENV_PRESETS, SETTING_HINT, UNMANAGED_MAX_LENGTH
from tests.hub_stack import directory_for, keycloak_admin, log_in, pods

PLUGIN_ATTRIBUTES = ("volumeCapacity", "timezone", ENV_PRESETS)
KEYCLOAK_LOG = "primehub_spawner.keycloak"


def with_roles(factory: RealmFactory, roles: list[str]) -> dict:
    """The demo realm whose client's service account holds exactly ``roles`` of realm-management,
    with frank, who is not in the global group (so his launch reads it by path)."""
    variant = factory.variant()
    service_account(variant)["clientRoles"] = {"realm-management": roles} if roles else {}
    add_user(variant, "frank", ["/phusers"])["groups"].remove("/everyone")
    return variant


def undeclared(factory: RealmFactory, policy: str | None = None) -> dict:
    """The demo realm with Keycloak's default user profile (the plugin's attributes undeclared)
    and the unmanaged-attribute policy ``policy``."""
    variant = factory.variant()
    profile = user_profile(variant)
    profile["attributes"] = [a for a in profile["attributes"] if a["name"] not in PLUGIN_ATTRIBUTES]
    if policy:
        profile["unmanagedAttributePolicy"] = policy
    set_user_profile(variant, profile)
    return variant


async def test_every_admin_call_works_with_exactly_the_documented_roles(realm_factory):
    realm = realm_factory.create(with_roles(realm_factory, list(SERVICE_ACCOUNT_ROLES)))
    directory = directory_for(realm)
    try:
        alice = await directory.user_id("alice")
        context = await directory.launch_context(alice, {})  # user, groups, roles, profile
        assert [g.name for g in context.groups] == ["ml-team", "phusers"]
        frank = await directory.launch_context(await directory.user_id("frank"), {})
        assert frank.global_group is not None and frank.global_group.name == "everyone"
        assert directory.user_profile is not None and directory.user_profile.dropped() == []
        assert await directory.save_env_presets(alice, (("SEED", "42"),)) is True
    finally:
        await directory.close()


READS = r"reading the user('s groups|'s effective realm roles)?"  # concurrent: any may be first


@pytest.mark.parametrize(
    ("roles", "failing_call", "named_role"),
    [
        (["query-users", "query-groups"], READS, READ_ROLE),  # what the README used to list
        ([READ_ROLE], "saving the user's environment presets", WRITE_ROLE),
        ([], READS, READ_ROLE),
    ],
    ids=["query-roles-only", "no-manage-users", "none"],
)
async def test_a_missing_role_is_an_error_naming_it(realm_factory, roles, failing_call, named_role):
    realm = realm_factory.create(with_roles(realm_factory, roles))
    directory = directory_for(realm)
    alice = keycloak_admin(realm).get_user_id("alice")
    try:
        with pytest.raises(IdentityServiceError) as raised:
            await directory.launch_context(alice, {})
            await directory.save_env_presets(alice, (("SEED", "42"),))
    finally:
        await directory.close()
    message = str(raised.value)
    assert re.match(f"Keycloak admin API: {failing_call} failed \\(HTTP 403", message), message
    assert message.endswith(
        f"the client's service account needs the realm-management role {named_role}"
    )


async def test_user_and_group_attributes_round_trip(realm_factory):
    realm = realm_factory.create()
    admin = keycloak_admin(realm)
    alice = admin.get_user_id("alice")
    representation = admin.get_user(alice)
    representation["attributes"] |= {"volumeCapacity": ["7"], "timezone": ["Europe/Berlin"]}
    admin.update_user(alice, representation)
    tracking = [{"name": f"MLFLOW_VAR_{i}", "value": "v" * 20} for i in range(3)]  # < 255 chars
    ml_team = admin.get_group_by_path("/ml-team")
    ml_team["attributes"] |= {
        "quota-cpu": ["6.5"],
        "project-quota-memory": ["64Gi"],
        "mlflow-tracking-uri": ["http://mlflow.example.org:5000"],
        "mlflow-ui-url": ["https://mlflow.example.org"],
        "mlflow-tracking-envs": [json.dumps(tracking)],
        "mlflow-artifact-envs": [json.dumps([{"name": "AWS_REGION", "value": "eu-west-1"}])],
    }
    admin.update_group(ml_team["id"], ml_team)
    directory = directory_for(realm)
    env = tuple((f"VAR_{i}", "x" * 500) for i in range(20))  # ~10 KB of presets
    try:
        assert await directory.save_env_presets(alice, env) is True
        context = await directory.launch_context(alice, {})
    finally:
        await directory.close()
    assert (context.user.volume_capacity, context.user.timezone) == ("7Gi", "Europe/Berlin")
    assert context.user.envs == env
    group_context = context.group("ml-team")
    assert group_context.user_quota.cpu == 6.5 and group_context.group_quota.memory == 64 * 2**30
    assert group_context.mlflow is not None
    assert group_context.mlflow.tracking_uri == "http://mlflow.example.org:5000"
    assert group_context.mlflow.tracking_envs == tuple((e["name"], e["value"]) for e in tracking)
    assert group_context.mlflow.artifact_envs == (("AWS_REGION", "eu-west-1"),)


async def test_keycloak_keeps_at_most_255_characters_in_a_group_attribute_value(realm):
    """Keycloak 26 stores group attribute values in a 255-character column (keycloak#34981) and
    answers a longer one with a 500; the README tells administrators to keep MLflow variables and
    other group attributes within it."""
    admin = keycloak_admin(realm)
    ml_team = admin.get_group_by_path("/ml-team")
    ml_team["attributes"]["mlflow-ui-url"] = ["https://mlflow.example.org/" + "x" * 228]  # 255
    admin.update_group(ml_team["id"], ml_team)
    ml_team["attributes"]["mlflow-ui-url"] = ["https://mlflow.example.org/" + "x" * 229]
    with pytest.raises(KeycloakPutError, match="500"):
        admin.update_group(ml_team["id"], ml_team)


@pytest.mark.parametrize(
    ("policy", "limit"),
    [("ADMIN_EDIT", UNMANAGED_MAX_LENGTH), ("declared", 65536)],
)
async def test_the_presets_limit_is_read_from_the_realm_and_enforced_by_keycloak(
    realm_factory, policy, limit
):
    variant = realm_factory.variant() if policy == "declared" else undeclared(realm_factory, policy)
    realm = realm_factory.create(variant)
    directory = directory_for(realm)
    alice = keycloak_admin(realm).get_user_id("alice")
    try:
        await directory.launch_context(alice, {})
        assert directory.env_presets_limit() == limit
        fits = (("V", "x" * (limit - len('[{"name": "V", "value": ""}]'))),)
        assert await directory.save_env_presets(alice, fits) is True
        with pytest.raises(IdentityServiceError, match="HTTP 400"):  # Keycloak's own check
            await directory.save_env_presets(alice, (("V", "x" * limit),))
    finally:
        await directory.close()


async def test_a_realm_that_drops_the_attributes_is_named_with_the_setting(realm_factory, caplog):
    realm = realm_factory.create(undeclared(realm_factory))
    directory = directory_for(realm)
    alice = keycloak_admin(realm).get_user_id("alice")
    caplog.set_level(logging.WARNING, KEYCLOAK_LOG)
    try:
        context = await directory.launch_context(alice, {})
        await directory.launch_context(alice, {})
        saved = await directory.save_env_presets(alice, (("SEED", "42"),))
    finally:
        await directory.close()
    # Keycloak imported alice's volumeCapacity and timezone, and hides them.
    assert (context.user.volume_capacity, context.user.timezone) == (None, None)
    warnings = [r.getMessage() for r in caplog.records if r.name == KEYCLOAK_LOG]
    dropped = [w for w in warnings if w.startswith(f"Keycloak realm {realm.realm} does not keep")]
    assert len(dropped) == 1, warnings  # at the first read, not at every one
    assert "volumeCapacity, timezone, predefinedEnvs" in dropped[0] and SETTING_HINT in dropped[0]
    assert saved is False
    assert any(w.startswith("Environment presets are not saved: ") for w in warnings), warnings


async def test_the_demo_realm_keeps_every_attribute_without_a_warning(realm_factory, caplog):
    realm = realm_factory.create()
    directory = directory_for(realm)
    caplog.set_level(logging.WARNING, KEYCLOAK_LOG)
    try:
        context = await directory.launch_context(keycloak_admin(realm).get_user_id("alice"), {})
    finally:
        await directory.close()
    assert (context.user.volume_capacity, context.user.timezone) == ("5Gi", "Asia/Taipei")
    assert [r for r in caplog.records if r.name == KEYCLOAK_LOG] == []


@pytest.mark.cluster
@pytest.mark.reliability("bad input")
async def test_presets_longer_than_keycloak_keeps_are_a_400_naming_the_limit(
    hub_factory, realm_factory, kube, namespace
):
    hub = hub_factory(undeclared(realm_factory, "ADMIN_EDIT"))
    await log_in(hub, "alice")
    big = {"BIG": "x" * 3000}
    status, body = hub.api("POST", "users/alice/server", {"user_options": {"env": big}})
    assert status == 400, body
    size = len(json.dumps([{"name": "BIG", "value": big["BIG"]}]))
    assert body["message"] == (
        f"user_options.env: saved as your presets these variables take {size:,} characters; "
        f"Keycloak keeps at most {UNMANAGED_MAX_LENGTH:,} in the user attribute predefinedEnvs"
    )
    assert await pods(kube, namespace) == []
    status, _ = hub.api("POST", "users/alice/server", {"user_options": {"env": {"SMALL": "1"}}})
    assert status in (201, 202), hub.log()


def test_demo_users_can_log_in_without_a_required_action():
    """Keycloak's default user profile requires e-mail, first and last name of users: a demo user
    without them would be stopped by an 'update your account' page at the first login."""
    from devstack.realms import demo_realm

    realm = demo_realm()
    for name in ("phadmin", "alice", "bob", "carol", "dave"):
        entry = user(realm, name)
        assert entry["email"] and entry["firstName"] and entry["lastName"], name
        assert entry["groups"][0] == "/everyone"  # Keycloak's import applies no default group
        assert entry["realmRoles"] == ["default-roles-primehub"]
    assert group(realm, "everyone")["attributes"]["displayName"] == ["Global"]


@pytest.mark.reliability("faults")
async def test_saving_presets_does_not_undo_an_administrators_change(realm, keycloak_proxy):
    """An administrator disables alice while the hub saves her presets (between the hub's read of
    the user and its write): she stays disabled. (Her user-profile attributes, names and e-mail,
    must go back with the write, as Keycloak removes those a PUT omits.)"""
    admin = keycloak_admin(realm)
    alice = admin.get_user_id("alice")
    directory = directory_for(realm.via(keycloak_proxy.url))
    try:
        await directory.launch_context(alice, {})  # the service account's token, the profile
        keycloak_proxy.latency(2.0)  # Keycloak's answers reach the hub 2 s late
        save = asyncio.ensure_future(directory.save_env_presets(alice, (("SEED", "42"),)))
        await asyncio.sleep(1.0)  # the hub's read is answered; the answer is on its way
        changed = admin.get_user(alice) | {"enabled": False}
        admin.update_user(alice, changed)
        assert await save is True
    finally:
        await directory.close()
    after = admin.get_user(alice)
    assert (after["enabled"], after["firstName"], after["lastName"]) == (False, "Alice", "Liddell")
    assert after["attributes"]["predefinedEnvs"] == ['[{"name": "SEED", "value": "42"}]']
    assert after["attributes"]["volumeCapacity"] == ["5"]
