"""Who may do what on the plugin's pages and JupyterHub's spawn page: a link (maybe on another
site) only preselects, pages create no servers, and access goes by JupyterHub's scopes."""

from __future__ import annotations

import html

import httpx
import pytest

from devstack.testing import eventually
from tests.hub_stack import browser_session, keycloak_admin, log_in, pods, xsrf

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

EVIL_INDEX = "http://evil.example/simple"
LINKS = {  # (who follows it, the link)
    "legacy keys": (
        "alice",
        f"/hub/spawn?group=phusers&env_name=PIP_INDEX_URL&env_value={EVIL_INDEX}",
    ),
    "opt- keys, named server": (
        "alice",
        f"/hub/spawn/alice/x?opt-group=phusers&opt-env_name=PIP_INDEX_URL&opt-env_value={EVIL_INDEX}",
    ),
    "form field names": ("alice", "/hub/spawn/alice?group=phusers&instance_type.phusers=cpu-2"),
    "an admin's link for another user": ("phadmin", "/hub/spawn/bob?group=ml-team"),
}


def servers_of(hub, user: str) -> dict:
    """Every server the hub has for ``user``, stopped ones included."""
    status, model = hub.api("GET", f"users/{user}?include_stopped_servers")
    assert status == 200, model
    return model["servers"]


@pytest.mark.reliability("access", cases=len(LINKS))
async def test_a_get_with_launch_options_only_preselects(hub_factory, kube, namespace):
    hub = hub_factory()
    await log_in(hub, "alice", "bob")
    kc = keycloak_admin(hub.realm)
    presets_before = kc.get_user(kc.get_user_id("alice"))["attributes"].get("predefinedEnvs")
    for user, link in LINKS.values():
        async with browser_session(hub, user) as http:
            page = await http.get(f"{hub.url}{link}")
        assert page.status_code == 200, (link, page.text[-2000:])
        text = html.unescape(page.text)
        assert "A link can preselect server options but not start a server" in text, link
        selected = "ml-team" if user == "phadmin" else "phusers"
        assert f'data-selected-group="{selected}"' in page.text, link
        assert EVIL_INDEX not in text  # environment rows are never taken from a link
    async with browser_session(hub, "alice") as http:  # a launch link, then a tracking argument
        await http.get(f"{hub.url}/hub/primehub/launch?group=phusers")
        page = await http.get(f"{hub.url}/hub/spawn?utm_source=newsletter")
        assert 'data-selected-group="phusers"' in page.text  # the link's presets kept
    assert await pods(kube, namespace) == []
    for user in ("alice", "bob"):
        assert not any(s["started"] or s["pending"] for s in servers_of(hub, user).values())
    assert kc.get_user(kc.get_user_id("alice"))["attributes"].get("predefinedEnvs") == (
        presets_before
    )


@pytest.mark.reliability("access", cases=3)
async def test_plugin_pages_create_no_servers(hub_factory):
    hub = hub_factory(extra_config="c.JupyterHub.named_server_limit_per_user = 1")
    await log_in(hub, "alice")
    async with browser_session(hub, "alice") as http:
        part = await http.get(f"{hub.url}/hub/primehub/options/alice/ghost?group=ml-team")
        assert part.status_code == 200 and 'name="image.ml-team"' in part.text
        assert "ghost" not in servers_of(hub, "alice")
        status, _ = hub.api("POST", "users/alice/servers/first", {"user_options": {}})
        assert status in (201, 202)  # the one named server the limit allows
        link = await http.get(f"{hub.url}/hub/primehub/launch?server=second&group=ml-team")
        assert link.status_code == 302 and link.headers["location"].endswith("/spawn/alice/second")
        assert "second" not in servers_of(hub, "alice")
        form = await http.get(f"{hub.url}{link.headers['location']}")
        assert form.status_code == 400  # JupyterHub's own check, no longer bypassed
        assert "already has the maximum of 1 named servers" in form.text
    assert set(servers_of(hub, "alice")) == {"", "first"}


async def _token(hub, user: str, scopes: list[str]) -> str:
    """A token ``user`` makes for herself (as on the hub's token page) with only ``scopes``."""
    async with browser_session(hub, user) as http:
        page = (await http.get(f"{hub.url}/hub/token")).text
        response = await http.post(
            f"{hub.url}/hub/api/users/{user}/tokens",
            json={"scopes": scopes, "note": "test"},
            headers={"X-XSRFToken": xsrf(page)},
        )
    assert response.status_code == 201, response.text
    return response.json()["token"]


# Users may look at but not start their own servers (their role lacks `servers`); alice may start
# bob's. A deployment's way of saying "admins and helpers launch for you".
ROLES = """
c.JupyterHub.load_roles.append(
    {"name": "user", "scopes": ["read:users:name!user", "access:servers!user", "tokens!user"]}
)
c.JupyterHub.load_roles.append(
    {"name": "bob-helper", "users": ["alice"], "scopes": ["servers!user=bob", "read:users!user=bob"]}
)
"""


@pytest.mark.reliability("access", cases=7)
async def test_plugin_pages_authorise_by_jupyterhub_scopes(hub_factory, kube, namespace):
    hub = hub_factory(extra_config=ROLES)
    await log_in(hub, "alice", "bob", "carol")
    options = f"{hub.url}/hub/primehub/options"
    async with browser_session(hub, "alice") as http:
        part = await http.get(f"{options}/bob/?group=ml-team")  # granted servers!user=bob
        assert part.status_code == 200 and 'name="instance_type.ml-team"' in part.text
        own = await http.get(f"{options}/alice/?group=ml-team")  # no servers scope on her own
        assert own.status_code in (403, 404) and "instance_type" not in own.text
        link = await http.get(f"{hub.url}/hub/primehub/launch?group=phusers")
        assert link.status_code == 403
        spawn_page = await http.get(f"{hub.url}/hub/spawn/alice")  # JupyterHub agrees
        assert spawn_page.status_code in (403, 404)
    async with browser_session(hub, "carol") as http:  # no scope on bob's servers
        refused = await http.get(f"{options}/bob/?group=ml-team")
        assert refused.status_code in (403, 404) and "instance_type" not in refused.text

    # Tokens — one with no scope but its name, a notebook server's own — get nothing: the pages,
    # like JupyterHub's, take the login cookie only.
    status, body = hub.api("POST", "users/bob/server", {"user_options": {"group": "ml-team"}})
    assert status in (201, 202), body

    async def server_token():
        for pod in await pods(kube, namespace):
            if pod["metadata"]["name"] == "jupyter-bob":
                env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
                return env["JUPYTERHUB_API_TOKEN"]
        return None

    tokens = (
        await _token(hub, "bob", ["read:users:name!user=bob"]),
        await eventually(server_token),
    )
    async with httpx.AsyncClient(timeout=30) as http:
        for token in tokens:
            headers = {"Authorization": f"token {token}"}
            response = await http.get(f"{options}/bob/?group=ml-team", headers=headers)
            assert response.status_code in (302, 403) and "instance_type" not in response.text
