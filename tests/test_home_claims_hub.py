"""Home claims on the test ground: one per (user, server) whatever the names, a claim remembered
from a colliding template left alone, and a claim that vanished created again at the next start."""

from __future__ import annotations

import pytest

from devstack.realms import add_user
from devstack.testing import eventually
from tests.hub_stack import log_in, pods

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CLAIMS = "persistentvolumeclaims"
ANNOTATION = "hub.jupyter.org/username"


def home_claim(pod: dict) -> str:
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "volume-home")
    return volume["persistentVolumeClaim"]["claimName"]


async def pod_named(kube, namespace: str, name: str) -> dict:
    async def found():
        return next((p for p in await pods(kube, namespace) if p["metadata"]["name"] == name), None)

    return await eventually(found, timeout=30, what=f"pod {name}")


async def ready(hub, user: str, server: str) -> None:
    async def is_ready():
        return (hub.api("GET", f"users/{user}")[1]["servers"].get(server) or {}).get("ready")

    await eventually(is_ready, timeout=60, what=f"{user}/{server} ready")


def realm_with_prefix_users(realm_factory) -> dict:
    realm = realm_factory.variant()
    for name in ("al", "alic"):
        add_user(realm, name, ["/ml-team"])
    return realm


PER_SERVER = "\nc.PrimeHubSpawner.home_per_server = True"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(  # the default: one home per user, as in PrimeHub
            "",
            {
                ("alice", ""): "claim-alice",
                ("al", "ice"): "claim-al",
                ("alic", "e"): "claim-alic",
                ("al", ""): "claim-al",
            },
            id="home per user",
        ),
        pytest.param(
            PER_SERVER,
            {
                ("alice", ""): "claim-alice",  # PrimeHub's name for the default server
                ("al", "ice"): "claim-al--ice",
                ("alic", "e"): "claim-alic--e",
                ("al", ""): "claim-al",
            },
            id="home per server",
        ),
    ],
)
@pytest.mark.reliability("isolation", cases=4)
async def test_users_whose_names_prefix_each_other_get_their_own_home_claims(
    hub_factory, kube, namespace, realm_factory, config, expected
):
    hub = hub_factory(realm_with_prefix_users(realm_factory), extra_config=config)
    await log_in(hub, *{user for user, _ in expected})
    for user, server in expected:
        path = f"users/{user}/servers/{server}" if server else f"users/{user}/server"
        status, body = hub.api("POST", path, {"user_options": {"group": "ml-team"}})
        assert status in (201, 202), body
    claims = {}
    for user, server in expected:
        pod = await pod_named(
            kube, namespace, f"jupyter-{user}" + (f"--{server}" if server else "")
        )
        claims[user, server] = home_claim(pod)
    assert claims == expected
    listed = (await kube.get(f"/api/v1/namespaces/{namespace}/{CLAIMS}"))["items"]
    assert set(claims.values()) <= {c["metadata"]["name"] for c in listed}


OLD_TEMPLATE = '\nc.KubeSpawner.pvc_name_template = "claim-{username}{servername}"'


async def stop_server(hub, kube, namespace: str, user: str, server: str) -> None:
    path = f"users/{user}/servers/{server}" if server else f"users/{user}/server"
    assert hub.api("DELETE", path)[0] in (202, 204)
    pod = f"jupyter-{user}" + (f"--{server}" if server else "")

    async def stopped():
        names = [p["metadata"]["name"] for p in await pods(kube, namespace)]
        return pod not in names and not hub.api("GET", f"users/{user}")[1]["pending"]

    await eventually(stopped, timeout=30, what=f"{user}/{server} stopped")


@pytest.mark.reliability("isolation", cases=2)
async def test_a_home_claim_of_another_server_is_never_mounted(
    hub_factory, kube, namespace, realm_factory
):
    """Whatever names a template gives: with PrimeHub-era claim-{username}{servername}, user al's
    server ice is refused alice's claim-alice; a claim of a PrimeHub-era user john.doe
    (claim-john-2edoe in KubeSpawner's old escape scheme) is refused to the user john-2edoe."""
    realm = realm_with_prefix_users(realm_factory)
    add_user(realm, "john-2edoe", ["/ml-team"])
    hub = hub_factory(realm, extra_config=OLD_TEMPLATE)
    await log_in(hub, "alice", "al", "john-2edoe")
    options = {"user_options": {"group": "ml-team"}}
    assert hub.api("POST", "users/alice/server", options)[0] in (201, 202)
    await ready(hub, "alice", "")
    legacy = {
        "metadata": {"name": "claim-john-2edoe", "annotations": {ANNOTATION: "john.doe"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    await kube.post(f"/api/v1/namespaces/{namespace}/{CLAIMS}", legacy)
    for path, claim in (("users/al/servers/ice", "claim-alice"), ("users/john-2edoe/server", "")):
        status, body = hub.api("POST", path, options)
        assert status == 409, body
        assert body["message"].startswith(f"The home volume claim {claim or 'claim-john-2edoe'}")
    names = [p["metadata"]["name"] for p in await pods(kube, namespace)]
    assert names == ["jupyter-alice"]


@pytest.mark.reliability("isolation")
async def test_a_remembered_home_claim_of_another_server_gives_way_to_its_own(
    hub_factory, kube, namespace, realm_factory
):
    """al/ice ran under the old template while claim-alice was its own; since then alice's claim
    took that name. Under the new template al/ice does not follow its memory into alice's home."""
    hub = hub_factory(realm_with_prefix_users(realm_factory), extra_config=OLD_TEMPLATE)
    shipped = hub.config.removesuffix(OLD_TEMPLATE)
    await log_in(hub, "al", "alice")
    options = {"user_options": {"group": "ml-team"}}
    assert hub.api("POST", "users/al/servers/ice", options)[0] in (201, 202)
    assert home_claim(await pod_named(kube, namespace, "jupyter-al--ice")) == "claim-alice"
    await ready(hub, "al", "ice")  # the hub now remembers claim-alice for al/ice
    await stop_server(hub, kube, namespace, "al", "ice")
    await kube.delete(f"/api/v1/namespaces/{namespace}/{CLAIMS}/claim-alice")

    async def gone():
        return (
            await kube.get_or_none(f"/api/v1/namespaces/{namespace}/{CLAIMS}/claim-alice") is None
        )

    await eventually(gone, timeout=30, what="al's claim-alice deleted")
    assert hub.api("POST", "users/alice/server", options)[0] in (201, 202)  # alice's own now
    await ready(hub, "alice", "")
    hub.stop()
    hub.config = shipped + PER_SERVER
    hub.start()
    assert hub.api("POST", "users/al/servers/ice", options)[0] in (201, 202)
    assert home_claim(await pod_named(kube, namespace, "jupyter-al--ice")) == "claim-al--ice"
    assert "the home claim claim-alice remembered for it belongs to alice; using claim-al--ice" in (
        hub.full_log()
    )


@pytest.mark.reliability("faults")
async def test_a_home_claim_that_vanished_is_created_again_at_the_next_start(
    hub_factory, kube, namespace
):
    hub = hub_factory()
    await log_in(hub, "alice")
    options = {"user_options": {"group": "ml-team"}}
    assert hub.api("POST", "users/alice/server", options)[0] in (201, 202)
    await ready(hub, "alice", "")
    assert hub.api("DELETE", "users/alice/server")[0] in (202, 204)
    claim = f"/api/v1/namespaces/{namespace}/{CLAIMS}/claim-alice"

    async def stopped():
        return all(p["metadata"]["name"] != "jupyter-alice" for p in await pods(kube, namespace))

    await eventually(stopped, timeout=30, what="alice's pod gone")
    await kube.delete(claim)

    async def deleted():
        return await kube.get_or_none(claim) is None

    await eventually(deleted, timeout=30, what="claim-alice deleted")
    assert hub.api("POST", "users/alice/server", options)[0] in (201, 202)
    await ready(hub, "alice", "")  # not Pending on "persistentvolumeclaim not found"
    assert await kube.get_or_none(claim) is not None
    assert "your home volume claim claim-alice no longer exists; a new, empty one is created" in (
        hub.full_log()
    )
