"""The group REST API on the test ground: a user's groups with quotas, live usage and offers, the
servers running in a group, and who may read them (JupyterHub scopes and group membership)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from devstack.testing import eventually
from tests.hub_stack import browser_session, log_in, xsrf

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SHARING = "from primehub_spawner import sharing\nsharing.enable_group_sharing(c)"


async def user_token(hub, user: str, scopes: list[str] | None = None) -> str:
    """A token ``user`` makes for herself on the token page (all her permissions by default)."""
    body = {"note": "test"} | ({"scopes": scopes} if scopes is not None else {})
    async with browser_session(hub, user) as http:
        page = await http.get(f"{hub.url}/hub/token")
        made = await http.post(
            f"{hub.url}/hub/api/users/{user}/tokens",
            json=body,
            headers={"X-XSRFToken": xsrf(page.text)},
        )
    assert made.status_code == 201, made.text
    return made.json()["token"]


async def get(hub, token: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        headers = {"Authorization": f"token {token}"} if token else {}
        return await http.get(f"{hub.url}/hub/api/{path}", headers=headers)


async def launch(hub, user: str, server: str, group: str, instance_type: str) -> None:
    options = {"group": group, "instance_type": instance_type}
    status, body = await asyncio.to_thread(
        hub.api, "POST", f"users/{user}/servers/{server}", {"user_options": options}
    )
    assert status in (201, 202), body

    async def ready() -> bool:
        _, model = await asyncio.to_thread(hub.api, "GET", f"users/{user}")
        return bool(model["servers"].get(server, {}).get("ready"))

    await eventually(ready, timeout=90, interval=0.5)


@pytest.mark.reliability("access", cases=9)
async def test_groups_and_group_servers_answer_only_within_scope_and_membership(
    hub_factory, keycloak_proxy
):
    hub = hub_factory(proxy=keycloak_proxy, extra_config=SHARING)
    await log_in(hub, "alice", "bob", "carol")
    alice, bob, carol = [await user_token(hub, u) for u in ("alice", "bob", "carol")]

    answer = await get(hub, alice, "primehub/groups")
    assert answer.status_code == 200, answer.text
    groups = {g["name"]: g for g in answer.json()["groups"]}
    assert set(groups) == {"phusers", "ml-team"}  # never the global group
    team = groups["ml-team"]
    assert team["display_name"] == "ML Team"
    assert team["quota"]["user"] == {"cpu": 4.0, "memory": 8 * 10**9, "gpu": 1}
    assert team["quota"]["group"]["gpu"] == 1
    assert team["usage"]["group"] == {"cpu": 0.0, "memory": 0, "gpu": 0}
    types = {t["name"]: t for t in team["instance_types"]}
    assert {"cpu-1", "cpu-2", "gpu-1"} <= set(types) and types["cpu-1"]["global"]
    assert types["gpu-1"]["over_quota"] is None
    assert {"pytorch", "base-notebook"} <= {i["name"] for i in team["images"]}
    assert any(d["name"] == "scratch" and d["writable"] for d in team["datasets"])

    await launch(hub, "alice", "team", "ml-team", "gpu-1")
    await launch(hub, "alice", "solo", "phusers", "cpu-1")  # her other group: not ML Team's
    await launch(hub, "carol", "eyes", "vision", "cpu-1")

    # Usage is live, and the GPU quota (1) now refuses a second GPU server — with Keycloak away,
    # since the answer comes from the hub's memory, never from Keycloak.
    keycloak_proxy.disable()
    try:
        for token in (alice, bob):
            answer = await get(hub, token, "primehub/groups")
            assert answer.status_code == 200, answer.text
            team = {g["name"]: g for g in answer.json()["groups"]}["ml-team"]
            assert team["usage"]["group"]["gpu"] == 1
            over = {t["name"]: t["over_quota"] for t in team["instance_types"]}["gpu-1"]
            assert over and "GPU: 1 allowed, 1 in use, 1 requested" in over
        assert team["usage"]["user"]["gpu"] == 0  # bob's own usage
    finally:
        keycloak_proxy.replace()

    # Members see the group's servers; admins see any group's; nobody else learns of it.
    listing = await get(hub, bob, "primehub/groups/ml-team/servers")
    assert listing.status_code == 200, listing.text
    (server,) = listing.json()["servers"]  # not alice's PH Users server
    assert server["owner"] == "alice" and server["server"] == "team"
    assert server["instance_type"]["name"] == "gpu-1" and server["image"]["name"]
    assert server["resources"]["gpu"] == 1 and server["age_seconds"] >= 0
    assert server["group"] == {"key": "ml-team", "name": "ml-team", "display_name": "ML Team"}
    assert server["shared_with_group"] is False
    status, admin_view = await asyncio.to_thread(hub.api, "GET", "primehub/groups/vision/servers")
    assert status == 200 and [s["owner"] for s in admin_view["servers"]] == ["carol"]

    narrow = await user_token(hub, "alice", ["access:servers!user=alice"])
    refusals = {
        "carol reads ML Team's servers": (carol, "primehub/groups/ml-team/servers", 404),
        "alice reads Vision's servers": (alice, "primehub/groups/vision/servers", 404),
        "a group that does not exist": (alice, "primehub/groups/nope/servers", 404),
        "the global group": (alice, "primehub/groups/everyone/servers", 404),
        "a token with fewer scopes, group servers": (
            narrow,
            "primehub/groups/ml-team/servers",
            404,
        ),
        "a token with fewer scopes, groups": (narrow, "primehub/groups", 403),
        "alice reads bob's groups": (alice, "primehub/users/bob/groups", 403),
        "carol reads alice's groups": (carol, "primehub/users/alice/groups", 403),
        "no token at all": ("", "primehub/groups", 403),
    }
    for case, (token, path, expected) in refusals.items():
        answer = await get(hub, token, path)
        assert answer.status_code == expected, (case, answer.status_code, answer.text)
        assert '"servers"' not in answer.text and "gpu-1" not in answer.text, case
    status, model = await asyncio.to_thread(hub.api, "GET", "primehub/users/alice/groups")
    assert status == 200 and {g["name"] for g in model["groups"]} == {"phusers", "ml-team"}
