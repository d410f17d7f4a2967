"""The bad-input catalogue on one real hub: every malformed, tampered or forbidden launch request, by
REST and by the form, is a 400 naming the field and the reason — no pod, no claim, no spawn error
counted, the hub healthy — and a valid launch still works afterwards."""

from __future__ import annotations

import asyncio
import html
import secrets
from urllib.parse import quote

import pytest

from devstack.ground import TestGround
from devstack.hub import HubProcess
from devstack.manifests import apply_file, install_crds
from devstack.realms import RealmFactory
from devstack.testing import cluster_admin
from tests.hub_stack import (
    RESOURCES,
    browser_session,
    keycloak_admin,
    log_in,
    primehub_config,
    spawn_counts,
    xsrf,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REST_CASES = {
    # shape: unknown keys, wrong types, null, nested objects
    "unknown-key": ({"profile": "big"}, "user_options.profile: is not a known option"),
    "dataset-key": (
        {"datasets": ["imagenet-mini"]},
        "user_options.datasets: is not a known option",
    ),
    "not-an-object": (
        [{"group": "ml-team"}],
        "user_options must be an object or null",
    ),  # JupyterHub's own check
    "string-options": (
        "ml-team",
        "user_options must be an object or null",
    ),  # JupyterHub's own check
    "group-list": ({"group": ["ml-team"]}, "user_options.group: must be a string, not list"),
    "group-object": (
        {"group": {"name": "ml-team"}},
        "user_options.group: must be a string, not dict",
    ),
    "group-null": ({"group": None}, "user_options.group: must be a string, not null"),
    "type-number": ({"instance_type": 2}, "user_options.instance_type: must be a string, not int"),
    "image-bool": ({"image": True}, "user_options.image: must be a string, not bool"),
    # sizes, unicode and control characters
    "empty-group": ({"group": ""}, "user_options.group: must be 1 to 253 characters long"),
    "long-image": ({"image": "x" * 10_000}, "user_options.image: must be 1 to 253 characters long"),
    "nul": ({"group": "ml-team\x00"}, "user_options.group: must not contain control characters"),
    "newline": (
        {"instance_type": "cpu-2\n"},
        "user_options.instance_type: must not contain control",
    ),
    "bidi": ({"group": "ml\u202eteam"}, "user_options.group: must not contain control characters"),
    "unicode-name": ({"group": "ml-téam"}, "user_options.group: you are not a member of group"),
    "case": ({"group": "ML-Team"}, "user_options.group: you are not a member of group 'ML-Team'"),
    # names of other groups and their resources
    "other-group": (
        {"group": "vision"},
        "user_options.group: you are not a member of group 'vision'",
    ),
    "global-group": ({"group": "everyone"}, "user_options.group: you are not a member of group"),
    "other-type": (
        {"group": "phusers", "instance_type": "gpu-1"},
        "user_options.instance_type: 'gpu-1' is not available in group 'phusers'",
    ),
    "other-image": (
        {"group": "ml-team", "image": "opencv"},
        "user_options.image: 'opencv' is not available in group 'ml-team'",
    ),
    "missing-type": (
        {"group": "ml-team", "instance_type": "nope"},
        "user_options.instance_type: 'nope' is not available in group 'ml-team'",
    ),
    "not-ready": (
        {"group": "ml-team", "image": "building"},
        "user_options.image: image building is not ready",
    ),
    "gpu-on-cpu": (
        {"group": "ml-team", "instance_type": "cpu-2", "image": "pytorch"},
        "user_options.image: image pytorch needs a GPU and instance type cpu-2 has none",
    ),
    # environment variables
    "env-equals": ({"env": {"A=B": "1"}}, "user_options.env.A=B: is not a valid variable name"),
    "env-space": ({"env": {"A B": "1"}}, "user_options.env.A B: is not a valid variable name"),
    "env-digit": ({"env": {"1A": "1"}}, "user_options.env.1A: is not a valid variable name"),
    "env-empty": ({"env": {"": "1"}}, "user_options.env.: is not a valid variable name"),
    "env-reserved": (
        {"env": {"JUPYTERHUB_API_TOKEN": "x"}},
        "user_options.env.JUPYTERHUB_API_TOKEN: is set by the hub",
    ),
    "env-device": (
        {"env": {"NVIDIA_VISIBLE_DEVICES": "all"}},
        "user_options.env.NVIDIA_VISIBLE_DEVICES: is reserved: container runtimes read it",
    ),
    "env-standard": (
        {"env": {"GROUP_NAME": "x"}},
        "user_options.env.GROUP_NAME: is set by the hub",
    ),
    "env-dataset": (
        {"group": "ml-team", "env": {"ML_ENV_BATCH_SIZE": "64"}},
        "user_options.env.ML_ENV_BATCH_SIZE: is set for this launch by dataset ml-env",
    ),
    "env-number": ({"env": {"A": 1}}, "user_options.env.A: must be a string, not int"),
    "env-list": ({"env": ["A=1"]}, "user_options.env: must be an object"),
    "env-null": ({"env": None}, "user_options.env: must be an object"),
    "env-many": (
        {"env": {f"V{i}": "" for i in range(101)}},
        "user_options.env: may hold at most 100",
    ),
    "env-huge": ({"env": {"A": "x" * 100_000}}, "user_options.env.A: must be at most"),
    # safe mode
    "safe-string": ({"safe_mode": "yes"}, "user_options.safe_mode: must be true or false"),
    "safe-number": ({"safe_mode": 1}, "user_options.safe_mode: must be true or false"),
    "safe-null": ({"safe_mode": None}, "user_options.safe_mode: must be true or false"),
}
FORM_CASES = {
    "other-group": (
        {"group": "vision"},
        "user_options.group: you are not a member of group 'vision'",
    ),
    "control": (
        {"group": "ml-team\x07"},
        "user_options.group: must not contain control characters",
    ),
    "other-type": (
        {"group": "phusers", "instance_type.phusers": "gpu-1"},
        "user_options.instance_type: 'gpu-1' is not available in group 'phusers'",
    ),
    "other-image": (
        {"group": "ml-team", "image.ml-team": "opencv"},
        "user_options.image: 'opencv' is not available in group 'ml-team'",
    ),
    "not-ready": (
        {"group": "ml-team", "image.ml-team": "building"},
        "user_options.image: image building is not ready",
    ),
    "gpu-on-cpu": (
        {"group": "ml-team", "instance_type.ml-team": "cpu-2", "image.ml-team": "pytorch"},
        "user_options.image: image pytorch needs a GPU",
    ),
    "env-name": (
        {"group": "ml-team", "env_name": "A=B", "env_value": "1"},
        "user_options.env.A=B: is not a valid",
    ),
    "env-reserved": (
        {"group": "ml-team", "env_name": "JUPYTERHUB_API_TOKEN", "env_value": "x"},
        "user_options.env.JUPYTERHUB_API_TOKEN: is set by the hub",
    ),
    "env-device": (
        {"group": "ml-team", "env_name": "NVIDIA_VISIBLE_DEVICES", "env_value": "all"},
        "user_options.env.NVIDIA_VISIBLE_DEVICES: is reserved",
    ),
    "safe-mode": (
        {"group": "ml-team", "safe_mode": "maybe"},
        "user_options.safe_mode: must be true or false",
    ),
}


async def _kube_objects(ground: TestGround, namespace: str) -> tuple[list[str], list[str]]:
    async with cluster_admin(ground) as api:
        pods = (await api.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
        claims = (await api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"))["items"]
    return [p["metadata"]["name"] for p in pods], [c["metadata"]["name"] for c in claims]


@pytest.fixture(scope="module")
def stack(test_ground, keycloak, tmp_path_factory):
    """One hub for the whole catalogue: alice logged in, nothing launched."""
    directory = tmp_path_factory.mktemp("bad-input")
    namespace = f"bad-input-{secrets.token_hex(3)}"

    async def prepare() -> None:
        async with cluster_admin(test_ground) as api:
            await api.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
            await install_crds(api)
            await apply_file(api, RESOURCES, namespace)

    asyncio.run(prepare())
    realms = RealmFactory(keycloak)
    realm = realms.create()
    hub = HubProcess(directory / "hub", environment={"KUBECONFIG": str(test_ground.kubeconfig)})
    hub.config = primehub_config(hub, realm, namespace)
    hub.start()
    asyncio.run(log_in(hub, "alice"))
    yield hub, namespace, test_ground
    hub.stop()
    realms.delete_all()

    async def remove() -> None:
        async with cluster_admin(test_ground) as api:
            await api.delete(f"/api/v1/namespaces/{namespace}")

    asyncio.run(remove())


async def _assert_nothing_happened(hub: HubProcess, namespace: str, ground: TestGround) -> None:
    assert await _kube_objects(ground, namespace) == ([], [])
    assert not any(k.startswith("error/") and v for k, v in spawn_counts(hub).items()), hub.log()
    status, model = hub.api("GET", "users/alice")
    assert status == 200 and model["servers"] == {}


@pytest.mark.parametrize(("options", "message"), list(REST_CASES.values()), ids=list(REST_CASES))
@pytest.mark.reliability("bad input")
async def test_rest(stack, options, message):
    hub, namespace, ground = stack
    refused = spawn_counts(hub).get("failure/invalid_options", 0)
    status, body = hub.api("POST", "users/alice/server", {"user_options": options})
    assert status == 400, (status, body)
    assert body["message"].startswith(message), body["message"]
    await _assert_nothing_happened(hub, namespace, ground)
    # Counted as a refused request, not a spawn error (JupyterHub's own shape check counts nothing).
    counted = 0 if message.startswith("user_options must") else 1
    assert spawn_counts(hub).get("failure/invalid_options", 0) == refused + counted


@pytest.mark.parametrize(("fields", "message"), list(FORM_CASES.values()), ids=list(FORM_CASES))
@pytest.mark.reliability("bad input")
async def test_form(stack, fields, message):
    hub, namespace, ground = stack
    async with browser_session(hub, "alice") as http:
        page = (await http.get(f"{hub.url}/hub/spawn")).text
        response = await http.post(f"{hub.url}/hub/spawn", data={"_xsrf": xsrf(page), **fields})
    assert response.status_code == 400
    assert message in html.unescape(response.text)
    await _assert_nothing_happened(hub, namespace, ground)


@pytest.mark.parametrize("name", ["Bad_Name", "with space", "x" * 300, "dot.dot", "ü"])
@pytest.mark.reliability("bad input")
async def test_server_names_outside_jupyterhubs_rules(stack, name):
    hub, namespace, ground = stack
    status, _ = hub.api("POST", f"users/alice/servers/{quote(name)}", {"user_options": {}})
    assert status in (400, 404)
    await _assert_nothing_happened(hub, namespace, ground)


@pytest.mark.parametrize(
    "page", ["launch?server=Bad_Name&group=ml-team", "options/alice/Bad_Name?group=ml-team"]
)
@pytest.mark.reliability("bad input")
async def test_plugin_pages_refuse_bad_server_names(stack, page):
    hub, namespace, ground = stack
    async with browser_session(hub, "alice") as http:
        response = await http.get(f"{hub.url}/hub/primehub/{page}")
    assert response.status_code == 400 and "server:" in response.text
    await _assert_nothing_happened(hub, namespace, ground)


async def test_a_valid_launch_works_after_the_whole_catalogue(stack):
    hub, namespace, ground = stack
    status, body = hub.api("POST", "users/alice/server", {"user_options": {"group": "ml-team"}})
    assert status in (201, 202), body
    for _ in range(300):
        if hub.api("GET", "users/alice")[1]["servers"].get("", {}).get("ready"):
            break
        await asyncio.sleep(0.1)
    assert hub.api("GET", "users/alice")[1]["servers"][""]["ready"], hub.log()
    pods, claims = await _kube_objects(ground, namespace)
    assert pods == ["jupyter-alice"] and "claim-alice" in claims
    assert hub.api("DELETE", "users/alice/server")[0] in (202, 204)


@pytest.mark.reliability("bad input")
async def test_a_group_left_since_login_is_refused_at_the_next_launch(hub_factory, kube, namespace):
    hub = hub_factory()
    await log_in(hub, "bob")  # bob's only group is ml-team
    admin = keycloak_admin(hub.realm)
    admin.group_user_remove(admin.get_user_id("bob"), admin.get_group_by_path("/ml-team")["id"])
    status, body = hub.api("POST", "users/bob/server", {"user_options": {"group": "ml-team"}})
    assert status == 400
    assert body["message"].startswith("user_options.group: you are not a member of group 'ml-team'")
    assert (await kube.get(f"/api/v1/namespaces/{namespace}/pods"))["items"] == []
