"""End to end on the demo stack (``python -m devstack demo``: the project's jupyterhub_config.py, the
Keycloak, the real API server, the local kubelet) in Playwright with Debian's Chromium.

The tests run in order on one stack; screenshots go to ``.demo/screenshots/``."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest

from devstack.ground import processes_mentioning
from devstack.hub import oauth_login
from devstack.kubeapi import Credentials, KubeAPI
from devstack.testing import eventually
from tests.browsers import choose_group, logged_in_page
from tests.demo_stack import SCREENSHOTS, DemoStack
from tests.notebook_api import NotebookServer

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.browser]

PROBE = """
import errno, json, os

def writable(path):
    probe = os.path.join(path, ".e2e-probe")
    try:
        with open(probe, "w") as handle:
            handle.write("x")
    except OSError as error:
        return errno.errorcode[error.errno]
    os.remove(probe)
    return "writable"

paths = ["/home/jovyan", "/project/ml-team", "/phfs", "/datasets/docs", "/datasets/mnist",
         "/datasets/scratch", "/datasets/corpus", "/gitsync/recipes"]
print(json.dumps({
    "cwd": os.getcwd(),
    "exists": {p: os.path.isdir(p) for p in paths},
    "writable": {p: writable(p) for p in paths if os.path.isdir(p)},
    "links": {p: os.readlink(os.path.join("/home/jovyan", p))
              for p in os.listdir("/home/jovyan") if os.path.islink(os.path.join("/home/jovyan", p))},
    "env": {k: os.environ.get(k) for k in ("GROUP_NAME", "INSTANCE_TYPE", "IMAGE_NAME",
                                         "ML_ENV_MLFLOW_EXPERIMENT", "ML_ENV_BATCH_SIZE",
                                         "ML_TEAM_DATA")},
    "uid": [os.getuid(), os.getgid()],
}))
"""


def shot(name: str) -> str:
    return str(SCREENSHOTS / f"{name}.png")


async def api_headers(http: httpx.AsyncClient, hub: str, user: str) -> dict[str, str]:
    """The REST API as ``user``, logged in in ``http``: a token she makes for herself."""
    issued = await http.post(
        f"{hub}/hub/api/users/{user}/tokens",
        json={"note": "e2e", "expires_in": 600},
        headers={"X-XSRFToken": http.cookies.get("_xsrf", path="/hub/") or ""},
    )
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"token {issued.json()['token']}"}


async def choose(page, group: str, instance_type: str, image: str) -> None:
    await choose_group(page, group)
    fieldset = page.locator(f'fieldset[data-group="{group}"]')
    await fieldset.locator(f'input[value="{instance_type}"]').check()
    await fieldset.locator(f'input[value="{image}"]').check()


async def launch_and_reach_lab(page, user: str = "alice", pending_shot: str | None = None) -> None:
    await page.click('#spawn_form button[type="submit"]')
    await page.wait_for_url("**/hub/spawn-pending/**", wait_until="commit")
    if pending_shot:
        await page.wait_for_selector("#progress-message")
        await page.screenshot(path=shot(pending_shot), full_page=True)
    await page.wait_for_url(f"**/user/{user}/lab**", timeout=120_000)
    await page.wait_for_selector(".jp-Launcher", timeout=120_000)


async def test_the_demo_runs_real_keycloak(demo_stack):
    """Keycloak's own login page, and its admin API reporting a Keycloak 26 server."""
    keycloak = f"http://127.0.0.1:{demo_stack.ports['keycloak']}"
    async with httpx.AsyncClient(timeout=30) as http:
        login_page = await http.get(f"{demo_stack.hub_url}/hub/oauth_login", follow_redirects=True)
        assert str(login_page.url).startswith(f"{keycloak}/realms/primehub/")
        assert 'id="kc-form-login"' in login_page.text and "/login/keycloak" in login_page.text
        token = await http.post(
            f"{keycloak}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli"}
            | {"username": "admin", "password": "admin"},
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        info = (await http.get(f"{keycloak}/admin/serverinfo", headers=headers)).json()
    assert info["systemInfo"]["version"].startswith("26."), info["systemInfo"]
    assert f"Keycloak {info['systemInfo']['version']}" in demo_stack.log()  # what the demo printed
    assert f"{keycloak}/admin/master/console/" in demo_stack.log()


@pytest.mark.reliability("isolation")
async def test_alice_launches_in_ml_team_and_her_home_survives_a_restart(browser, demo_stack):
    hub = demo_stack.hub_url
    page = await logged_in_page(browser, hub, "alice", screenshot=shot("01-login"))
    await page.goto(f"{hub}/hub/spawn")
    await choose_group(page, "phusers")
    await page.screenshot(path=shot("02-options-ph-users"), full_page=True)
    await choose(page, "ml-team", "cpu-2", "base-notebook")
    await page.screenshot(path=shot("03-options-ml-team"), full_page=True)
    await launch_and_reach_lab(page, pending_shot="04-spawn-pending")
    await page.screenshot(path=shot("05-jupyterlab"))

    async with httpx.AsyncClient(timeout=60) as http:
        await oauth_login(http, hub, "alice")
        notebook = NotebookServer(http, hub, "alice")
        assert await notebook.open()
        seen = json.loads(await notebook.run(PROBE))
        assert seen["cwd"] == "/home/jovyan"
        assert all(seen["exists"].values()), seen["exists"]
        assert seen["writable"] == {
            "/home/jovyan": "writable",
            "/project/ml-team": "writable",  # the group's shared volume
            "/phfs": "writable",
            "/datasets/docs": "EROFS",  # global, read-only
            "/datasets/mnist": "EROFS",  # ds:mnist only
            "/datasets/scratch": "writable",  # ds:rw:scratch
            "/datasets/corpus": "EROFS",  # nfs
            "/gitsync/recipes": "EROFS",  # git, kept by git-sync
        }
        assert seen["links"]["ml-team"] == "/project/ml-team"  # the group's home-symlink
        assert seen["links"]["phfs"] == "/phfs"
        assert seen["env"] == {
            "GROUP_NAME": "ml-team",
            "INSTANCE_TYPE": "cpu-2",
            "IMAGE_NAME": "base-notebook",
            "ML_ENV_MLFLOW_EXPERIMENT": "demo",  # the env dataset
            "ML_ENV_BATCH_SIZE": "32",
            "ML_TEAM_DATA": "/project/ml-team/data",  # from ML Team's start-up profile
        }
        assert seen["uid"] == [1000, 100]  # the notebook user, not root
        home = (await notebook.request("GET", "contents/")).json()
        assert {"ml-team", "phfs"} <= {item["name"] for item in home["content"]}
        written = await notebook.put_text("survives-a-restart.txt", "written before the stop")
        assert written.status_code in (200, 201), written.text

        await page.goto(f"{hub}/hub/home")
        await page.click("#stop")
        await page.wait_for_selector("#stop", state="hidden", timeout=60_000)  # stopped
        await page.click("#start")
        await page.wait_for_url("**/hub/spawn/alice**")
        assert await page.locator("#primehub-group").input_value() == "ml-team"  # the last group
        await choose(page, "ml-team", "cpu-2", "base-notebook")
        await launch_and_reach_lab(page)
        assert await eventually(notebook.open, timeout=60, interval=1, what="the new server")
        again = await notebook.request("GET", "contents/survives-a-restart.txt")
        assert again.status_code == 200 and again.json()["content"] == "written before the stop"

        # Her second server mounts the same home (one home per user): the file is there too.
        api = await api_headers(http, hub, "alice")
        options = {"group": "ml-team", "instance_type": "cpu-1", "image": "base-notebook"}
        launched = await http.post(
            f"{hub}/hub/api/users/alice/servers/second", headers=api, json={"user_options": options}
        )
        assert launched.status_code in (201, 202), launched.text
        second = NotebookServer(http, hub, "alice", "second")
        assert await eventually(second.open, timeout=120, interval=1, what="her second server")
        seen = await second.request("GET", "contents/survives-a-restart.txt")
        assert seen.status_code == 200 and seen.json()["content"] == "written before the stop"


@pytest.mark.reliability("injection")
async def test_carol_sees_vision_with_its_name_as_text_and_launches(browser, demo_stack):
    hub = demo_stack.hub_url
    page = await logged_in_page(browser, hub, "carol")
    await page.goto(f"{hub}/hub/spawn")
    await page.screenshot(path=shot("06-options-vision"), full_page=True)
    options = page.locator("#primehub-group option")
    assert await options.all_inner_texts() == ["<b>Vision & Co</b>"]  # escaped, not markup
    assert await page.locator("#primehub-options b").count() == 0
    vision = page.locator('fieldset[data-group="vision"]')
    values = await vision.locator("input[type=radio]").evaluate_all(
        "inputs => inputs.map(i => i.value)"
    )
    assert sorted(values) == ["base-notebook", "cpu-1", "opencv"]  # own and global
    datasets = await vision.locator(".primehub-datasets").inner_text()
    assert "ImageNet (mini)" in datasets and "Documentation" in datasets
    assert "MNIST" not in datasets
    await vision.locator('input[value="opencv"]').check()
    await launch_and_reach_lab(page, "carol")


async def test_dave_has_no_group_to_launch_in(browser, demo_stack):
    hub = demo_stack.hub_url
    page = await logged_in_page(browser, hub, "dave")
    await page.goto(f"{hub}/hub/spawn")
    await page.screenshot(path=shot("07-options-no-group"), full_page=True)
    assert await page.locator("#primehub-no-group").is_visible()
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.click('#spawn_form button[type="submit"]')
    assert (await posted.value).status == 400
    error = await page.locator(".spawn-error-msg").inner_text()
    assert "group: no group is configured for you to launch a server in" in error


async def test_a_broken_images_start_shows_its_log_lines(browser, demo_stack):
    """Broken Notebook's Python cannot start: the page says so with the server's own words (the
    pending page, or the error page when the start fails within JupyterHub's first second)."""
    hub = demo_stack.hub_url
    page = await logged_in_page(browser, hub, "bob")
    await page.goto(f"{hub}/hub/spawn")
    await choose(page, "ml-team", "cpu-2", "broken-notebook")
    await page.click('#spawn_form button[type="submit"]')
    log = page.locator("pre.primehub-container-log")
    await log.wait_for(timeout=120_000)
    await page.screenshot(path=shot("08-broken-image"), full_page=True)
    assert "No module named 'encodings'" in await log.inner_text()
    message = await page.locator("body").inner_text()
    assert "The container notebook of pod jupyter-bob exited with code 1" in message


async def test_phadmin_launches_for_bob_through_the_rest_api(demo_stack):
    hub = demo_stack.hub_url
    async with httpx.AsyncClient(timeout=60) as http:
        await oauth_login(http, hub, "phadmin")
        api = await api_headers(http, hub, "phadmin")
        created = await http.post(f"{hub}/hub/api/users/bob", headers=api)
        assert created.status_code in (201, 409), created.text  # bob has never logged in
        options = {"group": "ml-team", "instance_type": "cpu-2", "image": "pytorch"}
        refused = await http.post(
            f"{hub}/hub/api/users/bob/servers/train", headers=api, json={"user_options": options}
        )
        assert refused.status_code == 400
        assert refused.json()["message"].startswith("user_options.image:")
        options["image"] = "base-notebook"
        launched = await http.post(
            f"{hub}/hub/api/users/bob/servers/train", headers=api, json={"user_options": options}
        )
        assert launched.status_code in (201, 202), launched.text

        async def ready():
            model = (await http.get(f"{hub}/hub/api/users/bob", headers=api)).json()
            return model["servers"].get("train", {}).get("ready")

        await eventually(ready, timeout=120, interval=1, what="bob's server")
    async with KubeAPI(Credentials.from_kubeconfig(demo_stack.kubeconfig)) as kube:
        pod = await kube.get("/api/v1/namespaces/primehub/pods/jupyter-bob--train")
    labels = pod["metadata"]["labels"]
    assert (labels["primehub.io/user"], labels["primehub.io/group"]) == ("bob", "ml-team")
    assert pod["status"]["phase"] == "Running"


async def test_the_demo_stops_every_process_on_sigterm(demo_stack):
    assert demo_stack.stop() == 0, demo_stack.log()[-3000:]
    await asyncio.sleep(1)
    assert processes_mentioning(str(demo_stack.state_dir)) == []  # cluster, kubelet, pods, Keycloak
    for port in demo_stack.ports.values():  # the hub, its proxy and Keycloak
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.reliability("faults")
async def test_a_second_demo_run_finds_alices_home(browser, demo_stack):
    """The demo run again on the same state (as ``make demo`` twice): the hub's database and the
    cluster agree, so alice's next launch starts and finds the file she wrote in the first run."""
    assert demo_stack.stop() == 0
    again = DemoStack(
        demo_stack.state_dir, demo_stack.log_file.with_name("demo-again.log"), demo_stack.ports
    ).start()
    try:
        hub = again.hub_url
        page = await logged_in_page(browser, hub, "alice")
        await page.goto(f"{hub}/hub/spawn")
        await choose(page, "ml-team", "cpu-2", "base-notebook")
        await launch_and_reach_lab(page)
        async with httpx.AsyncClient(timeout=60) as http:
            await oauth_login(http, hub, "alice")
            notebook = NotebookServer(http, hub, "alice")
            assert await eventually(notebook.open, timeout=60, interval=1, what="alice's server")
            kept = await notebook.request("GET", "contents/survives-a-restart.txt")
            assert kept.status_code == 200, again.log()[-3000:]
            assert kept.json()["content"] == "written before the stop"
    finally:
        assert again.stop() == 0, again.log()[-3000:]
