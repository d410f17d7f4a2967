"""Sharing a server with its launch group on the test ground: real Jupyter servers behind the
hub's proxy, group membership from Keycloak, JupyterHub's shares underneath."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from devstack.hub import oauth_login
from devstack.testing import eventually
from tests.hub_stack import browser_session, keycloak_admin, log_in, xsrf
from tests.notebook_api import NotebookServer

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SINGLEUSER = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
REFRESH_AGE, RECONCILE = 4, 2
CONFIG = f"""
from primehub_spawner import sharing
sharing.enable_group_sharing(c)
c.Authenticator.auth_refresh_age = {REFRESH_AGE}
c.PrimeHubAuthenticator.share_reconcile_interval = {RECONCILE}
c.Spawner.poll_interval = 2
c.JupyterHub.load_roles.append(
    {{"name": "tester-shares", "services": ["tester"], "scopes": ["groups:shares"]}}
)
"""


async def ready(hub, user: str, server: str) -> bool:
    _, model = await asyncio.to_thread(hub.api, "GET", f"users/{user}")
    return bool(model["servers"].get(server, {}).get("ready"))


class Member:
    """A user's browser: her hub session, and the shared server as she reaches it."""

    def __init__(self, http: httpx.AsyncClient, hub, name: str) -> None:
        self.http, self.hub, self.name = http, hub, name
        self.notebook = NotebookServer(http, hub.url, "alice", "team")

    async def hub_call(self, method: str, path: str, body=None) -> httpx.Response:
        page = await self.http.get(f"{self.hub.url}/hub/home")
        return await self.http.request(
            method,
            f"{self.hub.url}/hub/api/{path}",
            json=body,
            headers={"X-XSRFToken": xsrf(page.text)},
        )

    async def reaches_the_server(self) -> int:
        """The status of a request to alice's shared server's contents API."""
        return (await self.notebook.request("GET", "contents")).status_code


@pytest.mark.reliability("access", cases=6)
async def test_a_server_shared_with_its_group_is_open_to_members_only(hub_factory, kube, namespace):
    hub = hub_factory(cmd=SINGLEUSER, extra_config=CONFIG)
    await log_in(hub, "alice", "bob", "carol")
    options = {"group": "ml-team", "instance_type": "cpu-2", "image": "base-notebook"}
    status, body = await asyncio.to_thread(
        hub.api, "POST", "users/alice/servers/team", {"user_options": options}
    )
    assert status in (201, 202), body
    await eventually(lambda: ready(hub, "alice", "team"), timeout=120, interval=0.5)

    async with (
        httpx.AsyncClient(timeout=30) as alice_http,
        httpx.AsyncClient(timeout=30) as bob_http,
        httpx.AsyncClient(timeout=30) as carol_http,
    ):
        for http, name in ((alice_http, "alice"), (bob_http, "bob"), (carol_http, "carol")):
            await oauth_login(http, hub.url, name)
        alice, bob, carol = (
            Member(alice_http, hub, "alice"),
            Member(bob_http, hub, "bob"),
            Member(carol_http, hub, "carol"),
        )
        assert not await bob.notebook.open()  # not shared yet

        shared = await alice.hub_call("POST", "primehub/shares/alice/team")
        assert shared.status_code == 200, shared.text
        assert shared.json()["shared"] and shared.json()["group"]["display_name"] == "ML Team"
        assert await bob.notebook.open(authorize=True), (
            "bob (ML Team) cannot open alice's shared server"
        )
        assert await bob.reaches_the_server() == 200
        listing = await bob.hub_call("GET", "primehub/groups/ml-team/servers")
        assert listing.json()["servers"][0]["shared_with_group"] is True

        # carol (Vision) cannot: not through the page, not through any sharing API.
        assert not await carol.notebook.open(authorize=True)
        refusals = {
            "carol shares alice's server": await carol.hub_call(
                "POST", "primehub/shares/alice/team"
            ),
            "carol, JupyterHub's API": await carol.hub_call(
                "POST", "shares/alice/team", {"user": "carol"}
            ),
            "alice shares with carol, JupyterHub's API": await alice.hub_call(
                "POST", "shares/alice/team", {"user": "carol"}
            ),
            "alice makes a share code": await alice.hub_call("POST", "share-codes/alice/team"),
            "carol reads ML Team's servers": await carol.hub_call(
                "GET", "primehub/groups/ml-team/servers"
            ),
        }
        for case, answer in refusals.items():
            assert answer.status_code in (403, 404), (case, answer.status_code, answer.text)
        assert not await carol.notebook.open(authorize=True)

        # bob leaves ML Team in Keycloak: his access ends at his next refresh.
        kc = keycloak_admin(hub.realm)
        bob_id = kc.get_user_id("bob")
        team_id = kc.get_group_by_path("/ml-team")["id"]
        await asyncio.to_thread(kc.group_user_remove, bob_id, team_id)
        await asyncio.sleep(REFRESH_AGE + 1)  # past his last refresh: the next request refreshes
        assert await bob.reaches_the_server() == 403
        assert not await bob.notebook.open(authorize=True)
        await asyncio.to_thread(kc.group_user_add, bob_id, team_id)
        await asyncio.sleep(REFRESH_AGE + 1)
        assert await bob.reaches_the_server() == 200  # back in the group, the share holds

        # Stopping sharing ends it at once: within the second the server trusts the hub's answer.
        stopped = await alice.hub_call("DELETE", "primehub/shares/alice/team")
        assert stopped.status_code == 200 and stopped.json()["shared"] is False
        await asyncio.sleep(1.1)
        assert await bob.reaches_the_server() == 403
        assert not await share_roles(hub)

        # Revoked through JupyterHub's own API (an admin's), the share's role goes too.
        assert (await alice.hub_call("POST", "primehub/shares/alice/team")).status_code == 200
        shares = (await alice.hub_call("GET", "shares/alice/team")).json()["items"]
        assert [s["group"]["name"] for s in shares] == ["ml-team"]  # JupyterHub's own record
        await asyncio.sleep(1.1)
        assert await bob.reaches_the_server() == 200
        status, _ = await asyncio.to_thread(hub.api, "DELETE", "groups/ml-team/shared/alice/team")
        assert status == 204
        await eventually(lambda: bob_refused(bob), timeout=RECONCILE + 5, interval=0.5)
        assert not await share_roles(hub)

        # A share ends with the server, even one whose pod went behind the hub's back.
        assert (await alice.hub_call("POST", "primehub/shares/alice/team")).status_code == 200
        assert await share_roles(hub)
        await kube.delete(f"/api/v1/namespaces/{namespace}/pods/jupyter-alice--team")
        await eventually(_stopped(hub), timeout=60, interval=0.5)
        gone = await alice.hub_call("GET", "shares/alice/team")
        assert gone.status_code == 404 or gone.json()["items"] == []
        assert not await share_roles(hub)
        not_running = await alice.hub_call("POST", "primehub/shares/alice/team")
        assert not_running.status_code == 400 and "server:" in not_running.json()["message"]


async def bob_refused(bob: Member) -> bool:
    return await bob.reaches_the_server() == 403


async def share_roles(hub) -> list[str]:
    status, group = await asyncio.to_thread(hub.api, "GET", "groups/ml-team")
    assert status == 200, group
    return [role for role in group["roles"] if role.startswith("primehub-share-")]


def _stopped(hub):
    async def check() -> bool:
        _, model = await asyncio.to_thread(hub.api, "GET", "users/alice")
        return "team" not in model["servers"]

    return check


async def test_the_share_button_needs_the_session_xsrf(hub_factory):
    """A link on another site cannot share a server: the POST needs the session's XSRF token."""
    hub = hub_factory(extra_config=CONFIG)
    await log_in(hub, "alice")
    options = {"group": "ml-team", "instance_type": "cpu-1"}
    status, body = await asyncio.to_thread(
        hub.api, "POST", "users/alice/servers/team", {"user_options": options}
    )
    assert status in (201, 202), body
    await eventually(lambda: ready(hub, "alice", "team"), timeout=90, interval=0.5)
    async with browser_session(hub, "alice") as http:
        forged = await http.post(
            f"{hub.url}/hub/api/primehub/shares/alice/team",
            headers={"Origin": "http://evil.example", "Referer": "http://evil.example/"},
        )
        assert forged.status_code == 403, forged.text
        shares = await http.get(f"{hub.url}/hub/api/shares/alice/team")
    assert shares.status_code == 200 and shares.json()["items"] == []
