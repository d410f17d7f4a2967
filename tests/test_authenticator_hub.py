"""PrimeHubAuthenticator in a real JupyterHub, against real Keycloak: logins, groups, admin,
refresh before spawn, outages (through Toxiproxy), logout."""

from __future__ import annotations

import asyncio
import time
import urllib.parse

import httpx
import pytest

from devstack.hub import HubProcess, oauth_login
from devstack.keycloak import RequestCounter
from devstack.login import LoginFailed, login
from devstack.realms import Realm, service_account
from devstack.testing import http_client
from primehub_spawner.context import LaunchContext
from tests.hub_stack import keycloak_admin
from tests.hub_stack import mock_spawner_hub as hub_for

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(realm, tmp_path):
    hub = hub_for(realm, tmp_path / "hub")
    yield hub, realm
    hub.stop()


@pytest.fixture
def behind_proxy(realm, keycloak_proxy) -> Realm:
    """The demo realm as the hub reaches it through Toxiproxy (browsers reach ``realm``)."""
    return realm.via(keycloak_proxy.url)


async def hub_login(
    hub: HubProcess, username: str, http: httpx.AsyncClient | None = None
) -> httpx.Response:
    async with http_client(http) as client:
        return await oauth_login(client, hub.url, username)


def user(hub: HubProcess, name: str) -> dict:
    status, model = hub.api("GET", f"users/{name}")
    assert status == 200, (status, model, hub.log())
    return model


@pytest.mark.parametrize(
    ("username", "groups", "admin"),
    [
        ("alice", ["ml-team", "phusers"], False),
        ("phadmin", ["phusers"], True),
        ("carol", ["vision"], False),
        ("dave", [], False),
    ],
)
async def test_login_yields_groups_admin_and_launch_context(stack, username, groups, admin):
    hub, _ = stack
    home = await hub_login(hub, username)
    assert home.status_code in (200, 302), hub.log()
    model = user(hub, username)
    assert sorted(model["groups"]) == groups
    assert model["admin"] is admin
    context = LaunchContext.from_dict(model["auth_state"]["primehub"])
    assert [g.name for g in context.groups] == groups
    assert context.global_group.name == "everyone"
    assert context.user.admin is admin


async def test_vision_display_name_is_kept_verbatim(stack):
    hub, _ = stack
    await hub_login(hub, "carol")
    context = LaunchContext.from_dict(user(hub, "carol")["auth_state"]["primehub"])
    assert context.group("vision").display_name == "<b>Vision & Co</b>"


async def test_group_and_role_removal_count_at_the_next_spawn(stack):
    hub, server = stack
    await hub_login(hub, "alice")
    kc = keycloak_admin(server)
    alice = kc.get_user_id("alice")
    ml_team = kc.get_group_by_path("/ml-team")
    phusers = kc.get_group_by_path("/phusers")
    kc.group_user_remove(alice, ml_team["id"])
    kc.delete_group_realm_roles(phusers["id"], [kc.get_realm_role("it:cpu-2")])
    assert sorted(user(hub, "alice")["groups"]) == ["ml-team", "phusers"]  # no refresh yet
    status, _ = hub.api("POST", "users/alice/server", {"user_options": {}})
    assert status in (201, 202), hub.log()
    model = user(hub, "alice")
    assert model["groups"] == ["phusers"]
    context = LaunchContext.from_dict(model["auth_state"]["primehub"])
    assert [g.name for g in context.groups] == ["phusers"]
    assert "cpu-2" not in context.group("phusers").grants.instance_types


async def test_an_unchanged_refresh_leaves_the_stored_auth_state_alone(stack, keycloak):
    hub, _ = stack
    await hub_login(hub, "alice")
    stored = user(hub, "alice")["auth_state"]
    requests = RequestCounter(keycloak)
    status, _ = hub.api("POST", "users/alice/server", {"user_options": {}})
    assert status in (201, 202), hub.log()
    # checked before the spawn (userinfo: her groups and roles, unchanged, so no admin call) ...
    assert requests.calls("/userinfo") == 1 and requests.admin == 0, requests.since()
    assert user(hub, "alice")["auth_state"] == stored  # ... and not rewritten, tokens and all


async def test_a_fresh_launch_context_spares_keycloak_when_configured(realm, keycloak, tmp_path):
    hub = hub_for(realm, tmp_path / "hub", launch_context_max_age=600.0)
    try:
        await hub_login(hub, "alice")
        kc = keycloak_admin(realm)
        kc.group_user_remove(kc.get_user_id("alice"), kc.get_group_by_path("/ml-team")["id"])
        requests = RequestCounter(keycloak)
        status, _ = hub.api("POST", "users/alice/server", {"user_options": {}})
        assert status in (201, 202), hub.log()
        assert requests.since() == {}  # not even a token refresh
        assert sorted(user(hub, "alice")["groups"]) == ["ml-team", "phusers"]  # the delay paid
    finally:
        hub.stop()


async def test_admin_calls_per_login(stack, keycloak):
    hub, _ = stack
    await hub_login(hub, "bob")  # warms the group cache
    requests = RequestCounter(keycloak)
    await hub_login(hub, "alice")
    assert requests.admin == 3 + 1  # 3 per login, + phusers' roles (bob is not in it)
    requests.reset()
    await hub_login(hub, "bob")
    assert requests.admin == 3


@pytest.mark.reliability("faults")
async def test_identity_service_refusing_fails_the_login_clearly(realm_factory, tmp_path):
    variant = realm_factory.variant()
    service_account(variant)["clientRoles"] = {}
    hub = hub_for(realm_factory.create(variant), tmp_path / "hub")
    try:
        page = await hub_login(hub, "alice")
        assert page.status_code == 503
        assert "identity service is unavailable or misconfigured" in page.text
        assert "reading the user" in hub.full_log() and "HTTP 403" in hub.full_log()
        status, _ = hub.api("GET", "users/alice")
        assert status == 404  # no user half-made
    finally:
        hub.stop()


@pytest.mark.reliability("faults", cases=2)
async def test_outage_during_refresh_is_ridden_out_within_the_grace_period(
    realm, behind_proxy, keycloak_proxy, tmp_path
):
    hub = hub_for(
        behind_proxy, tmp_path / "hub", realm, identity_service_grace=3.0, auth_refresh_age=1
    )
    try:
        async with httpx.AsyncClient() as http:
            await hub_login(hub, "alice", http)
            keycloak_proxy.disable()
            await asyncio.sleep(1.1)  # past auth_refresh_age: the next request refreshes
            within = await http.get(f"{hub.url}/hub/home")
            assert within.status_code == 200
            assert "keeping the launch context" in hub.full_log()
            await asyncio.sleep(2.2)  # past the grace period
            beyond = await http.get(f"{hub.url}/hub/home")
            assert beyond.status_code == 302 and beyond.headers["location"].startswith("/hub/login")
            assert "a new login is required" in hub.full_log()
    finally:
        hub.stop()


async def test_logout_ends_the_keycloak_session(stack):
    hub, server = stack
    admin = keycloak_admin(server)
    alice = admin.get_user_id("alice")
    async with httpx.AsyncClient() as http:
        await hub_login(hub, "alice", http)
        assert len(admin.get_sessions(alice)) == 1
        logout = await http.get(f"{hub.url}/hub/logout")
        assert logout.status_code == 302
        end_session = logout.headers["location"]
        assert end_session.startswith(f"{server.issuer}/protocol/openid-connect/logout?")
        assert "id_token_hint=" in end_session
        back = await http.get(end_session)
        assert back.status_code == 302 and back.headers["location"] == f"{hub.url}/hub/login"
        assert admin.get_sessions(alice) == []  # Keycloak's own record: no session left
        with pytest.raises(LoginFailed):  # the Keycloak session is over: the form asks again
            await login(http, f"{hub.url}/hub/oauth_login", "alice", "wrong")


@pytest.mark.reliability("faults")
async def test_keycloak_down_at_the_callback_is_a_503_and_no_user(
    realm, behind_proxy, keycloak_proxy, tmp_path
):
    hub = hub_for(behind_proxy, tmp_path / "hub", realm)
    try:
        async with httpx.AsyncClient() as http:
            redirect = await login(
                http,
                f"{hub.url}/hub/oauth_login",
                "alice",
                "alice",
                stop=lambda url: "/hub/oauth_callback" in url,
            )
            callback = urllib.parse.urljoin(str(redirect.url), redirect.headers["location"])
            keycloak_proxy.disable()  # between the login form and the code exchange
            page = await http.get(callback)
        assert page.status_code == 503, page.text[:300]
        assert "identity service is unavailable" in page.text
        assert "Keycloak did not answer" in hub.full_log()
        assert hub.api("GET", "users/alice")[0] == 404  # no user half-made
    finally:
        hub.stop()


@pytest.mark.reliability("faults")
async def test_a_launch_while_keycloak_is_down_uses_the_recent_context(
    realm, behind_proxy, keycloak_proxy, tmp_path
):
    hub = hub_for(behind_proxy, tmp_path / "hub", realm)  # identity_service_grace: 600 s
    try:
        await hub_login(hub, "alice")
        keycloak_proxy.disable()
        status, _ = hub.api("POST", "users/alice/server", {"user_options": {}})
        assert status in (201, 202), hub.log()
        assert "keeping the launch context" in hub.full_log()
    finally:
        hub.stop()


@pytest.mark.reliability("faults")
async def test_a_slow_keycloak_does_not_stall_other_users(
    realm, behind_proxy, keycloak_proxy, tmp_path
):
    hub = hub_for(behind_proxy, tmp_path / "hub", realm)
    try:
        async with httpx.AsyncClient() as bob:
            await hub_login(hub, "alice")
            await hub_login(hub, "bob", bob)
            keycloak_proxy.latency(3.0)  # every answer to the hub, admin API and tokens alike
            started = time.monotonic()
            spawn = asyncio.ensure_future(
                asyncio.to_thread(hub.api, "POST", "users/alice/server", {"user_options": {}})
            )
            await asyncio.sleep(0.5)  # alice's pre-spawn reload is waiting on Keycloak
            asked = time.monotonic()
            page = await bob.get(f"{hub.url}/hub/home")
            answered = time.monotonic() - asked
            status, _ = await spawn
            spawn_time = time.monotonic() - started
        assert page.status_code == 200 and answered < 1.0, answered
        assert status in (201, 202) and spawn_time >= 3.0  # the reload did wait
    finally:
        hub.stop()


@pytest.mark.reliability("access", cases=3)
async def test_a_required_role_gates_the_login(realm_factory, tmp_path):
    """``required_role``: alice, who holds it, logs in; bob gets a refusal page and no hub user;
    alice, once the role is taken from her, is refused at her next login (launches for her:
    test_spawner_hub.py)."""
    variant = realm_factory.variant()
    variant["roles"]["realm"].append({"name": "hub-user"})
    next(u for u in variant["users"] if u["username"] == "alice")["realmRoles"].append("hub-user")
    realm = realm_factory.create(variant)
    hub = hub_for(realm, tmp_path / "hub", required_role="hub-user")
    try:
        await hub_login(hub, "alice")
        assert user(hub, "alice")["name"] == "alice"
        async with http_client() as http:
            refused = await oauth_login(http, hub.url, "bob")
        assert refused.status_code == 403, refused.text[-2000:]
        assert "does not hold the role &#39;hub-user&#39; this hub requires" in refused.text
        assert hub.api("GET", "users/bob")[0] == 404  # nothing made for him
        kc = keycloak_admin(realm)
        kc.delete_realm_roles_of_user(kc.get_user_id("alice"), [kc.get_realm_role("hub-user")])
        async with http_client() as http:  # her next login is refused too
            again = await oauth_login(http, hub.url, "alice")
        assert again.status_code == 403, again.status_code
    finally:
        hub.stop()
