"""Keycloak itself failing, on a Keycloak of this module's own: killed (SIGKILL) under a logged-in
user and restarted, and hung (SIGSTOP). Outages and latency on the network path are in
test_authenticator_hub.py and test_spawner_hub.py (through Toxiproxy)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from devstack.keycloak import KeycloakProcess, RequestCounter
from devstack.realms import Realm, demo_realm
from devstack.testing import started_keycloak
from primehub_spawner.keycloak import IdentityServiceError
from tests.hub_stack import directory_for, keycloak_admin, mock_spawner_hub

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def private_keycloak() -> Iterator[KeycloakProcess]:
    """A Keycloak with the demo realm imported at start; its database outlives a restart."""
    with started_keycloak(
        "faults-keycloak-", realms=[demo_realm(hub_url="http://127.0.0.1:*")]
    ) as kc:
        yield kc


@pytest.fixture
def private_realm(private_keycloak) -> Realm:
    if not private_keycloak.ready():  # a test that failed half-way left it down
        private_keycloak.resume()
        if not (private_keycloak.process and private_keycloak.process.alive()):
            private_keycloak.start()
    return Realm(private_keycloak.url, "primehub")


def test_sessions_committed_before_a_kill_outlive_it(private_keycloak, private_realm):
    """The test ground's Keycloak keeps what it committed through a SIGKILL, as a production
    database does: the kill test below relies on a session made just before the kill."""
    probe = {
        "clientId": "durability-probe",
        "publicClient": True,
        "standardFlowEnabled": False,
        "directAccessGrantsEnabled": True,
    }
    private_keycloak.admin("POST", "realms/primehub/clients", probe)
    oidc = f"{private_realm.url}/realms/primehub/protocol/openid-connect"
    try:
        for _ in range(2):  # an immediate kill lost the session in 9 of 10 tries without it
            token = httpx.post(
                f"{oidc}/token",
                data={
                    "grant_type": "password",
                    "client_id": "durability-probe",
                    "username": "alice",
                    "password": "alice",
                    "scope": "openid",
                },
            ).json()["access_token"]
            private_keycloak.kill()
            private_keycloak.start()
            userinfo = httpx.get(f"{oidc}/userinfo", headers={"Authorization": f"Bearer {token}"})
            assert userinfo.status_code == 200, userinfo.headers.get("www-authenticate")
    finally:
        (client,) = private_keycloak.admin(
            "GET", "realms/primehub/clients?clientId=durability-probe"
        )
        private_keycloak.admin("DELETE", f"realms/primehub/clients/{client['id']}")


@pytest.mark.reliability("faults")
async def test_a_hung_keycloak_fails_within_the_admin_api_timeout(private_keycloak, private_realm):
    directory = directory_for(private_realm, timeout=2)
    alice = keycloak_admin(private_realm).get_user_id("alice")
    try:
        await directory.launch_context(alice, {})  # the service account's token is cached
        private_keycloak.pause()
        started = time.monotonic()
        try:
            with pytest.raises(IdentityServiceError, match="failed \\(KeycloakConnectionError"):
                await directory.launch_context(alice, {})
            elapsed = time.monotonic() - started
        finally:
            private_keycloak.resume()
        assert elapsed < 4, elapsed
        context = await directory.launch_context(alice, {})  # and it answers again
        assert context.user.username == "alice"
    finally:
        await directory.close()


@pytest.mark.reliability("faults", cases=2)
async def test_a_killed_keycloak_is_ridden_out_and_its_restart_picked_up(
    private_keycloak, private_realm, tmp_path
):
    hub = mock_spawner_hub(private_realm, tmp_path / "hub", auth_refresh_age=1)
    try:
        async with httpx.AsyncClient() as alice:
            await mock_login(hub, "alice", alice)
            private_keycloak.kill()
            await asyncio.sleep(1.1)  # past auth_refresh_age: the next request refreshes
            page = await alice.get(f"{hub.url}/hub/home")
            assert page.status_code == 200  # within the grace period
            assert "keeping the launch context" in hub.full_log()
            status, _ = hub.api("POST", "users/alice/server", {"user_options": {}})
            assert status in (201, 202), hub.log()

            private_keycloak.start()  # the same database: realm, users and sessions kept
            requests = RequestCounter(private_keycloak)
            kept = hub.log().count("keeping the launch context")
            await asyncio.sleep(1.1)
            page = await alice.get(f"{hub.url}/hub/home")
            assert page.status_code == 200
            # Refreshed against the restarted Keycloak with alice's tokens (her session survived
            # the restart): userinfo answered (her groups and roles unchanged: no admin read
            # needed), no outage was logged.
            assert requests.calls("/userinfo") == 1 and requests.admin == 0, requests.since()
            assert hub.log().count("keeping the launch context") == kept, hub.log()[-3000:]
        async with httpx.AsyncClient() as bob:
            await mock_login(hub, "bob", bob)
        assert hub.api("GET", "users/bob")[0] == 200
    finally:
        hub.stop()


async def mock_login(hub, username: str, http: httpx.AsyncClient) -> None:
    from devstack.hub import oauth_login

    home = await oauth_login(http, hub.url, username)
    assert home.status_code in (200, 302), hub.log()
