"""PrimeHubSpawner in a real JupyterHub on the test ground: the REST contract, one validation path,
quota (also under concurrency) and named servers in different groups."""

from __future__ import annotations

import asyncio
import html
import json
import re
import sys
import time
import urllib.parse

import pytest

from devstack.keycloak import RequestCounter
from devstack.realms import group as realm_group
from devstack.testing import eventually
from tests.hub_stack import (
    browser_session,
    keycloak_admin,
    log_in,
    pods,
    progress_messages,
    realm_with,
    spawn_counts,
    xsrf,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def test_rest_spawn_with_defaults_and_with_choices(hub_factory, kube, namespace):
    hub = hub_factory()
    await log_in(hub, "alice")
    status, _ = hub.api("POST", "users/alice/server", {"user_options": {}})
    assert status in (201, 202), hub.log()
    status, _ = hub.api(
        "POST",
        "users/alice/servers/gpu",
        {
            "user_options": {
                "group": "ml-team",
                "instance_type": "gpu-1",
                "image": "pytorch",
                "env": {"EXPERIMENT": "one"},
            }
        },
    )
    assert status in (201, 202), hub.log()

    async def both_running():
        running = [p for p in await pods(kube, namespace) if p["status"].get("phase") == "Running"]
        return running if len(running) == 2 else None

    running = {p["metadata"]["name"]: p for p in await eventually(both_running, timeout=60)}
    default_pod, gpu_pod = running["jupyter-alice"], running["jupyter-alice--gpu"]
    assert default_pod["metadata"]["labels"]["primehub.io/group"] == "ml-team"
    assert default_pod["metadata"]["labels"]["primehub.io/user"] == "alice"
    container = gpu_pod["spec"]["containers"][0]
    assert container["image"] == "quay.io/jupyter/pytorch-notebook:cuda12-2025-01-01"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu_pod["spec"]["nodeName"] == "gpu-node"
    assert gpu_pod["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["GROUP_NAME"], env["INSTANCE_TYPE"], env["EXPERIMENT"]) == (
        "ml-team",
        "gpu-1",
        "one",
    )
    assert "NVIDIA_VISIBLE_DEVICES" not in env
    cpu_env = {e["name"]: e.get("value") for e in default_pod["spec"]["containers"][0]["env"]}
    assert cpu_env["NVIDIA_VISIBLE_DEVICES"] == "none" and cpu_env["TZ"] == "Asia/Taipei"
    _, model = hub.api("GET", "users/alice")
    assert model["servers"][""]["user_options"] == {
        "group": "ml-team",
        "instance_type": "cpu-1",
        "image": "base-notebook",
        "safe_mode": False,
        "env": {},
    }


@pytest.mark.reliability("bad input")
async def test_quota_reached_is_a_400_naming_the_quota(hub_factory, kube, namespace, realm_factory):
    hub = hub_factory(realm_with(realm_factory, ml_team={"quota-cpu": "1"}))
    await log_in(hub, "alice")
    status, body = hub.api(
        "POST",
        "users/alice/server",
        {"user_options": {"group": "ml-team", "instance_type": "cpu-2"}},
    )
    assert status == 400
    assert body["message"] == (
        "user_options.quota: your quota in group 'ml-team' would be exceeded — "
        "CPU: 1 allowed, 0 in use, 2 requested"
    )
    assert spawn_counts(hub).get("failure/quota") == 1


async def test_concurrent_spawns_never_pass_the_group_quota(
    hub_factory, kube, namespace, realm_factory
):
    hub = hub_factory(
        realm_with(realm_factory, ml_team={"project-quota-cpu": "4", "quota-cpu": "100"})
    )
    await log_in(hub, "alice")
    options = {"user_options": {"group": "ml-team", "instance_type": "cpu-1"}}
    results = await asyncio.gather(
        *(
            asyncio.to_thread(hub.api, "POST", f"users/alice/servers/s{i}", options)
            for i in range(20)
        )
    )
    accepted = [r for r in results if r[0] in (201, 202)]
    refused = [r for r in results if r[0] == 400]
    assert (len(accepted), len(refused)) == (4, 16), results
    assert all(
        "the quota of group 'ml-team' would be exceeded — CPU: 4 allowed" in r[1]["message"]
        for r in refused
    ), [r[1] for r in refused]

    async def four_pods():
        return len(await pods(kube, namespace)) == 4

    await eventually(four_pods, timeout=60)
    await asyncio.sleep(1.0)
    assert len(await pods(kube, namespace)) == 4


async def test_named_servers_in_different_groups(hub_factory, kube, namespace):
    hub = hub_factory()
    await log_in(hub, "alice")
    for name, group in (("ml", "ml-team"), ("ph", "phusers")):
        status, _ = hub.api(
            "POST", f"users/alice/servers/{name}", {"user_options": {"group": group}}
        )
        assert status in (201, 202), hub.log()

    async def two():
        found = await pods(kube, namespace)
        return found if len(found) == 2 else None

    by_name = {
        p["metadata"]["name"]: p["metadata"]["labels"]["primehub.io/group"]
        for p in await eventually(two)
    }
    assert by_name == {"jupyter-alice--ml": "ml-team", "jupyter-alice--ph": "phusers"}
    _, model = hub.api("GET", "users/alice")
    assert {n: s["user_options"]["group"] for n, s in model["servers"].items()} == {
        "ml": "ml-team",
        "ph": "phusers",
    }
    async with browser_session(hub, "alice") as http:
        home = (await http.get(f"{hub.url}/hub/home")).text
    assert re.findall(
        r'data-server-name="(\w+)" data-group="([\w-]+)" data-active="true"', home
    ) == [("ml", "ml-team"), ("ph", "phusers")]


@pytest.mark.reliability("injection")
async def test_form_per_group_with_names_rendered_inert(hub_factory, realm_factory):
    hub = hub_factory(
        realm_with(realm_factory, vision={"displayName": "<script>alert('x')</script> & Co"})
    )
    async with browser_session(hub, "carol") as http:
        page = (await http.get(f"{hub.url}/hub/spawn")).text
    assert "<script>alert('x')</script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in page
    assert 'name="instance_type.vision"' in page and 'value="cpu-1"' in page
    assert 'name="image.vision"' in page and 'value="opencv"' in page
    async with browser_session(hub, "alice") as http:
        page = (await http.get(f"{hub.url}/hub/spawn")).text
    assert re.findall(r'<option value="([^"]+)"', page) == ["ml-team", "phusers"]
    assert 'data-dataset="scratch"' in page and "read-write" in page
    async with browser_session(hub, "dave") as http:
        page = (await http.get(f"{hub.url}/hub/spawn")).text
    assert "No group is configured for you to launch a server" in page


async def test_form_submission_is_validated_like_rest(hub_factory, kube, namespace):
    hub = hub_factory()
    async with browser_session(hub, "alice") as http:
        page = (await http.get(f"{hub.url}/hub/spawn")).text
        bad = await http.post(
            f"{hub.url}/hub/spawn",
            data={
                "_xsrf": xsrf(page),
                "group": "ml-team",
                "instance_type.ml-team": "cpu-2",
                "image.ml-team": "pytorch",
            },
        )
        assert bad.status_code == 400
        assert (
            "user_options.image: image pytorch needs a GPU and instance type cpu-2 has none"
            in bad.text
        )
        assert await pods(kube, namespace) == []
        good = await http.post(
            f"{hub.url}/hub/spawn",
            data={
                "_xsrf": xsrf(page),
                "group": "phusers",
                "instance_type.phusers": "cpu-2",
                "image.phusers": "datascience",
                "env_name": ["PROJECT"],
                "env_value": ["demo"],
            },
        )
        assert good.status_code in (200, 302), good.text[:500]
    _, model = hub.api("GET", "users/alice")
    assert model["servers"][""]["user_options"] == {
        "group": "phusers",
        "instance_type": "cpu-2",
        "image": "datascience",
        "safe_mode": False,
        "env": {"PROJECT": "demo"},
    }

    async def running():
        return [p for p in await pods(kube, namespace) if p["status"].get("phase") == "Running"]

    pod = (await eventually(running, timeout=60))[0]
    assert pod["metadata"]["labels"]["primehub.io/group"] == "phusers"


@pytest.mark.parametrize("bob_logged_in", [True, False], ids=["after-login", "never-logged-in"])
async def test_an_admin_sees_another_users_options(hub_factory, bob_logged_in):
    hub = hub_factory()
    if bob_logged_in:
        await log_in(hub, "bob")
    else:  # the admin adds bob to the hub; his groups come from Keycloak's admin API
        assert hub.api("POST", "users/bob")[0] == 201
    async with browser_session(hub, "phadmin") as http:
        page = (await http.get(f"{hub.url}/hub/spawn/bob")).text
    assert "Server options of" in page and "<strong>bob</strong>" in page
    assert re.findall(r'<option value="([^"]+)"', page) == ["ml-team"]


async def test_a_groups_part_of_the_form_is_served_to_its_user_and_admins(hub_factory):
    hub = hub_factory()
    await log_in(hub, "bob")
    options = f"{hub.url}/hub/primehub/options"
    async with browser_session(hub, "alice") as http:
        page = (await http.get(f"{hub.url}/hub/spawn")).text
        assert 'data-group-url="/hub/primehub/options/alice"' in page
        part = await http.get(f"{options}/alice/?group=phusers")
        assert part.status_code == 200 and 'name="instance_type.phusers"' in part.text
        named = await http.get(f"{options}/alice/gpu?group=ml-team")
        assert named.status_code == 200 and 'name="image.ml-team"' in named.text
        assert (await http.get(f"{options}/alice/?group=vision")).status_code == 404
        # JupyterHub's answer to a scope filtered away: as if bob's server did not exist
        assert (await http.get(f"{options}/bob/?group=ml-team")).status_code == 404
    async with browser_session(hub, "phadmin") as http:
        part = await http.get(f"{options}/bob/?group=ml-team")
        assert part.status_code == 200 and 'name="instance_type.ml-team"' in part.text


async def test_launching_for_someone_who_never_logged_in(hub_factory, kube, namespace):
    hub = hub_factory()
    for name in ("bob", "stranger"):
        assert hub.api("POST", f"users/{name}")[0] == 201
    status, _ = hub.api("POST", "users/bob/server", {"user_options": {"image": "pytorch"}})
    assert status == 400  # checked against bob's grants: pytorch needs a GPU instance type
    status, _ = hub.api("POST", "users/bob/server", {"user_options": {}})
    assert status in (201, 202), hub.log()

    async def running():
        return [p for p in await pods(kube, namespace) if p["status"].get("phase") == "Running"]

    pod = (await eventually(running, timeout=60))[0]
    assert pod["metadata"]["labels"]["primehub.io/group"] == "ml-team"
    status, body = hub.api("POST", "users/stranger/server", {"user_options": {}})
    assert status == 403 and "Keycloak does not know the user name" in body["message"]
    assert "jupyter-stranger" not in [p["metadata"]["name"] for p in await pods(kube, namespace)]


async def test_env_rows_are_saved_as_presets_and_launch_links_preselect(
    hub_factory, kube, namespace
):
    hub = hub_factory()
    await log_in(hub, "alice")
    status, _ = hub.api(
        "POST",
        "users/alice/server",
        {"user_options": {"group": "phusers", "env": {"DATA_DIR": "/tmp/d"}}},
    )
    assert status in (201, 202), hub.log()
    kc = keycloak_admin(hub.realm)

    async def saved():
        attributes = kc.get_user(kc.get_user_id("alice")).get("attributes", {})
        return attributes.get("predefinedEnvs")

    assert await eventually(saved) == ['[{"name": "DATA_DIR", "value": "/tmp/d"}]']
    assert kc.get_user(kc.get_user_id("alice"))["attributes"]["volumeCapacity"] == [
        "5"
    ]  # others kept
    async with browser_session(hub, "alice") as http:  # a new login carries the saved rows
        link = await http.get(
            f"{hub.url}/hub/primehub/launch",
            params={
                "server": "second",
                "group": "ml-team",
                "instancetype": "gpu-1",
                "image": "nope",
                "autolaunch": "1",
            },
        )
        assert link.status_code == 302, hub.log()[-2500:]
        assert link.headers["location"].endswith("/hub/spawn/alice/second")
        page = (await http.get(f"{hub.url}{link.headers['location']}")).text
    snippet = (
        page[page.find("primehub-options") - 200 : page.find("primehub-options") + 400]
        or page[-1500:]
    )
    assert 'data-selected-group="ml-team"' in page and 'data-autolaunch="true"' in page, snippet
    assert re.search(r'value="gpu-1"[^>]*\n?\s*checked', page)
    assert (
        "Image &#39;nope&#39; is not available in ML Team; a default is selected for you." in page
    )
    assert 'name="env_name" value="DATA_DIR"' in page


@pytest.mark.reliability("faults")
async def test_unschedulable_spawn_shows_why_and_can_be_cancelled(
    hub_factory, kube, namespace, realm_factory
):
    hub = hub_factory(
        realm_with(
            realm_factory,
            ml_team={
                "quota-gpu": "3",
                "project-quota-gpu": "3",
                "quota-cpu": "10",
                "quota-memory": "100G",
            },
        )
    )
    await log_in(hub, "bob")
    options = {"user_options": {"group": "ml-team", "instance_type": "gpu-1", "image": "pytorch"}}
    for name in ("g1", "g2"):
        assert hub.api("POST", f"users/bob/servers/{name}", options)[0] in (201, 202), hub.log()
    status, _ = hub.api("POST", "users/bob/servers/g3", options)
    assert status == 202  # still pending: there are only two GPUs
    reason = (
        "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."  # gpu-1 tolerates the GPU taint
    )
    messages = await asyncio.wait_for(progress_messages(hub, "bob", "g3", until=reason), 30)
    assert any(reason in m for m in messages), messages
    status, _ = hub.api("DELETE", "users/bob/servers/g3")
    assert status in (202, 204)

    async def cancelled():
        names = [p["metadata"]["name"] for p in await pods(kube, namespace)]
        return (
            "jupyter-bob--g3" not in names
            and hub.api("GET", "users/bob")[1]["servers"].get("g3") is None
        )

    await eventually(cancelled, timeout=30)
    # The cancelled spawn no longer counts against project-quota-gpu 3: two GPUs in use, one more fits.
    status, body = hub.api("POST", "users/bob/servers/g4", options)
    assert status in (201, 202), body


@pytest.mark.reliability("isolation")
async def test_the_gpu_quota_counts_mig_slices_of_running_pods(
    hub_factory, kube, namespace, realm_factory
):
    """A GPU resource other than the vendors' (here a MIG slice) counts while the pod runs, not
    only while the launch is in flight."""
    mig = {
        "apiVersion": "primehub.io/v1alpha1",
        "kind": "InstanceType",
        "metadata": {"name": "mig-1"},
        "spec": {
            "limits": {"cpu": 0.5, "memory": "512M", "gpu": 1},
            "gpuResourceName": "nvidia.com/mig-1g.10gb",
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        },
    }
    await kube.post(f"/apis/primehub.io/v1alpha1/namespaces/{namespace}/instancetypes", mig)
    realm = realm_with(realm_factory, ml_team={"quota-gpu": "1"})
    realm["roles"]["realm"].append({"name": "it:mig-1"})
    realm_group(realm, "ml-team")["realmRoles"].append("it:mig-1")
    hub = hub_factory(realm)
    await log_in(hub, "bob")
    options = {"user_options": {"group": "ml-team", "instance_type": "mig-1", "image": "pytorch"}}
    assert hub.api("POST", "users/bob/servers/m1", options)[0] in (201, 202), hub.log()

    async def running():
        return any(
            p["metadata"]["name"] == "jupyter-bob--m1" and p["status"].get("phase") == "Running"
            for p in await pods(kube, namespace)
        )

    async def ready():
        return hub.api("GET", "users/bob")[1]["servers"]["m1"]["ready"]

    await eventually(running, timeout=60, what="bob's MIG server running")
    await eventually(ready, timeout=60, what="the spawn finished")  # nothing reserved any more
    status, body = hub.api("POST", "users/bob/servers/m2", options)
    assert status == 400, body
    assert "GPU: 1 allowed, 1 in use, 1 requested" in body["message"]


@pytest.mark.reliability("isolation", cases=3)
async def test_datasets_and_group_settings_cannot_set_the_hubs_or_device_variables(
    hub_factory, kube, namespace, realm_factory
):
    for name, variables in (
        ("nvidia", {"visible_devices": "all"}),
        ("jupyterhub", {"api_url": "http://evil.example"}),
    ):
        body = {
            "apiVersion": "primehub.io/v1alpha1",
            "kind": "Dataset",
            "metadata": {"name": name},
            "spec": {"type": "env", "variables": variables},
        }
        await kube.post(f"/apis/primehub.io/v1alpha1/namespaces/{namespace}/datasets", body)
    envs = [{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "all"}, {"name": "X", "value": "1"}]
    realm = realm_with(realm_factory, ml_team={"mlflow-artifact-envs": json.dumps(envs)})
    for role in ("ds:nvidia", "ds:jupyterhub"):
        realm["roles"]["realm"].append({"name": role})
        realm_group(realm, "ml-team")["realmRoles"].append(role)
    hub = hub_factory(realm)
    await log_in(hub, "alice")
    options = {"user_options": {"group": "ml-team", "instance_type": "cpu-1"}}
    assert hub.api("POST", "users/alice/server", options)[0] in (201, 202), hub.log()

    async def created():
        return next(
            (p for p in await pods(kube, namespace) if p["metadata"]["name"] == "jupyter-alice"),
            None,
        )

    pod = await eventually(created, timeout=30, what="alice's pod")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "none" and env["X"] == "1"
    assert "NVIDIA_DRIVER_CAPABILITIES" not in env
    assert env["JUPYTERHUB_API_URL"] != "http://evil.example"
    log = hub.log()  # the launch warnings (also shown in the spawn's progress)
    assert "dataset nvidia: variable 'visible_devices' was left out" in log
    assert "dataset jupyterhub: variable 'api_url' was left out" in log


@pytest.mark.reliability("access", cases=20)
async def test_a_loop_of_refused_launches_costs_keycloak_one_refresh(hub_factory, keycloak):
    hub = hub_factory(refused_launch_refresh_interval=120.0)  # longer than the loop can take
    await log_in(hub, "alice")
    requests = RequestCounter(keycloak)
    for attempt in range(20):
        status, body = hub.api("POST", "users/alice/server", {"user_options": {"group": "vision"}})
        assert status == 400, (attempt, body)
    assert requests.calls("/userinfo") <= 1, requests.since()
    assert requests.admin <= 4, requests.since()  # one refresh's admin calls (+ a group listing)


@pytest.mark.reliability("access")
async def test_refused_launches_do_not_keep_a_revoked_group_alive(hub_factory, keycloak):
    """Refusals spare Keycloak only within the interval after its last answer: a user who keeps
    being refused still has her groups reloaded once per interval."""
    hub = hub_factory(refused_launch_refresh_interval=2.0)
    await log_in(hub, "alice")
    kc = keycloak_admin(hub.realm)
    refused = {"user_options": {"group": "vision"}}
    assert hub.api("POST", "users/alice/server", refused)[0] == 400
    kc.group_user_remove(kc.get_user_id("alice"), kc.get_group_by_path("/ml-team")["id"])
    requests = RequestCounter(keycloak)
    started = time.monotonic()
    for _ in range(10):  # 5 s and more of refusals, each within the interval of the one before
        assert hub.api("POST", "users/alice/server", refused)[0] == 400
        await asyncio.sleep(0.5)
    status, body = hub.api("POST", "users/alice/server", {"user_options": {"group": "ml-team"}})
    assert status == 400 and "you are not a member of group 'ml-team'" in body["message"], body
    # One reload per interval at most (plus the last launch's), however many refusals: 11 without.
    most = int((time.monotonic() - started) / 2.0) + 1
    assert 1 <= requests.calls("/userinfo") <= most < 11, requests.since()


@pytest.mark.reliability("access")
async def test_no_launch_for_a_user_who_lost_the_required_role(
    hub_factory, kube, namespace, realm_factory
):
    """JupyterHub lets an admin's launch through a failed refresh; the spawner does not."""
    realm = realm_factory.variant()
    realm["roles"]["realm"].append({"name": "hub-user"})
    next(u for u in realm["users"] if u["username"] == "alice")["realmRoles"].append("hub-user")
    hub = hub_factory(realm, required_role="hub-user")
    await log_in(hub, "alice")
    kc = keycloak_admin(hub.realm)
    kc.delete_realm_roles_of_user(kc.get_user_id("alice"), [kc.get_realm_role("hub-user")])
    status, body = hub.api("POST", "users/alice/server", {"user_options": {}})
    assert status == 403, body
    assert body["message"] == "alice does not hold the role 'hub-user' this hub requires."
    assert await pods(kube, namespace) == []


async def test_a_launch_link_with_a_path_lands_there_after_the_start(hub_factory):
    hub = hub_factory()
    await log_in(hub, "alice")
    report = "lab/tree/project/ml-team/report.ipynb"
    async with browser_session(hub, "alice") as http:
        bad = await http.get(f"{hub.url}/hub/primehub/launch?group=ml-team&path=../../hub/token")
        assert bad.status_code == 400 and "path: must be a path inside the server" in bad.text
        link = await http.get(f"{hub.url}/hub/primehub/launch?group=ml-team&path={report}")
        assert link.status_code == 302, link.text
        form_url = f"{hub.url}{link.headers['location']}"
        page = await http.get(form_url)
        assert 'data-selected-group="ml-team"' in page.text
        started = await http.post(form_url, data={"_xsrf": xsrf(page.text), "group": "ml-team"})
        assert started.status_code == 302, started.text[-2000:]

        async def ready():
            return hub.api("GET", "users/alice")[1]["servers"].get("", {}).get("ready")

        await eventually(ready, timeout=60, what="alice's server")
        pending = f"{hub.url}/hub/spawn-pending/alice"
        landed = await http.get(urllib.parse.urljoin(pending, started.headers["location"]))
    assert landed.status_code == 302
    assert landed.headers["location"].endswith(f"/user/alice/{report}"), landed.headers


# The other form refusals are in the bad-input catalogue (test_bad_input_hub.py); this one needs a
# realm whose quota a single launch exceeds.
@pytest.mark.reliability("bad input")
async def test_a_form_launch_over_quota_is_a_400_without_a_pod(
    hub_factory, kube, namespace, realm_factory
):
    fields = {"group": "ml-team", "instance_type.ml-team": "gpu-1", "image.ml-team": "pytorch"}
    message = (
        "user_options.quota: your quota in group 'ml-team' would be exceeded — CPU: 0.5 allowed"
    )
    hub = hub_factory(realm_with(realm_factory, ml_team={"quota-cpu": "500m"}))
    async with browser_session(hub, "alice") as http:
        page = (await http.get(f"{hub.url}/hub/spawn")).text
        response = await http.post(f"{hub.url}/hub/spawn", data={"_xsrf": xsrf(page), **fields})
    assert response.status_code == 400
    assert html.unescape(message) in html.unescape(response.text)
    assert await pods(kube, namespace) == []
    assert not any(k.startswith("error/") and v for k, v in spawn_counts(hub).items())


async def test_pod_volumes_missing_claims_and_literal_values(hub_factory, kube, namespace):
    import json

    slow = [
        "/bin/sh",
        "-c",
        f"sleep 5; exec {sys.executable} -m http.server 8888",
    ]  # pending long enough to watch
    hub = hub_factory(cmd=slow)
    await kube.post(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {  # as PrimeHub's console does
            "metadata": {"name": "project-ml-team"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    await log_in(hub, "alice")
    options = {"user_options": {"group": "ml-team", "env": {"TEMPLATE": "{username} stays {x}"}}}
    spawning = asyncio.ensure_future(
        asyncio.to_thread(hub.api, "POST", "users/alice/server", options)
    )
    await asyncio.sleep(0.5)
    messages = await asyncio.wait_for(
        progress_messages(hub, "alice", "", until="Started container"), 60
    )
    assert (await spawning)[0] in (201, 202), hub.log()
    assert "PHFS storage is not mounted" in hub.full_log()
    warnings = [m for m in messages if m.startswith("Warning:")]
    assert (
        "Warning: dataset MNIST is not mounted: its volume claim dataset-mnist does not exist"
        in warnings
    )
    assert (
        "Warning: PHFS storage is not mounted: its volume claim primehub-store does not exist"
        in warnings
    )

    async def running():
        found = [p for p in await pods(kube, namespace) if p["status"].get("phase") == "Running"]
        return found[0] if found else None

    pod = await eventually(running, timeout=60)
    container = pod["spec"]["containers"][0]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {
        "/home/jovyan",
        "/project/ml-team",
        "/datasets/corpus",
        "/gitsync/recipes",
        "/dev/shm",
    } <= set(mounts)
    assert "/datasets/mnist" not in mounts and "/phfs" not in mounts
    assert mounts["/datasets/corpus"]["readOnly"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TEMPLATE"] == "{username} stays {x}"
    assert env["ML_ENV_MLFLOW_EXPERIMENT"] == "demo" and env["ML_ENV_BATCH_SIZE"] == "32"
    usage = json.loads(pod["metadata"]["annotations"]["primehub.io/usage"])
    assert usage == {
        "component": "jupyter",
        "component_name": "jupyter-alice",
        "group": "ml-team",
        "user": "alice",
        "instance_type": "cpu-1",
    }
    claim = await kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/claim-alice")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    hook = container["lifecycle"]["postStart"]["exec"]["command"]
    assert "ln -s /project/ml-team /home/jovyan/ml-team" in hook[2]


@pytest.mark.reliability("faults")
async def test_no_launch_on_a_context_older_than_the_grace_period(
    hub_factory, kube, namespace, keycloak_proxy
):
    hub = hub_factory(proxy=keycloak_proxy, identity_service_grace=1.0)
    await log_in(hub, "alice")
    keycloak_proxy.disable()
    await asyncio.sleep(1.2)
    status, body = hub.api("POST", "users/alice/server", {"user_options": {}})
    # JupyterHub lets an admin's launch for alice go ahead although her refresh failed; the
    # groups and roles stored at her login may have been revoked since, so the spawner refuses.
    assert status == 503, body
    assert body["message"].startswith("The identity service has been unavailable for too long")
    assert "a new login is required" in hub.full_log()
    assert hub.api("GET", "users/alice")[1]["servers"] == {}
    assert await pods(kube, namespace) == []
