"""A notebook that crashes while starting: the spawn fails at once with the container's exit code
and last log lines, escaped, in the progress and on the page; its words stay out of the hub's log."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from devstack.hub import oauth_login
from devstack.testing import eventually
from tests.hub_stack import log_in, pods, progress_events

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CRASH = [
    "/bin/sh",
    "-c",
    "echo starting the server; for i in 1 2 3; do echo line $i; done; "
    "echo '<b>ModuleNotFoundError</b>: No module named jupyterhub' >&2; exit 3",
]


async def outcome(hub, user: str) -> dict:
    """The spawn's last progress event: failed or ready."""
    async for event in progress_events(hub, user, "", timeout=60):
        if event.get("failed") or event.get("ready"):
            return event
    raise AssertionError("the progress stream ended without an outcome")


async def test_a_server_that_crashes_while_starting_shows_its_last_log_lines(
    hub_factory, kube, namespace
):
    hub = hub_factory(cmd=CRASH)
    await log_in(hub, "alice")
    options = {"group": "ml-team", "instance_type": "cpu-2", "image": "base-notebook"}
    status, _ = await asyncio.to_thread(
        hub.api, "POST", "users/alice/server", {"user_options": options}
    )
    assert status in (202, 500)  # pending, or already failed
    event = await asyncio.wait_for(outcome(hub, "alice"), 50)  # before the 60 s timeout
    assert event.get("failed"), event
    message = event["message"]
    assert "The container notebook of pod jupyter-alice exited with code 3" in message
    assert "line 3" in message and "<b>ModuleNotFoundError</b>: No module named" in message
    assert "starting the server" in message
    html_message = event["html_message"]
    assert "&lt;b&gt;ModuleNotFoundError&lt;/b&gt;" in html_message and "<b>" not in html_message

    async with httpx.AsyncClient(timeout=30) as http:
        await oauth_login(http, hub.url, "alice")
        page = (await http.get(f"{hub.url}/hub/spawn-pending/alice")).text
    assert '<pre class="primehub-container-log">' in page
    assert "&lt;b&gt;ModuleNotFoundError" in page and "<b>ModuleNotFoundError" not in page

    async def pod_gone() -> bool:
        return all(p["metadata"]["name"] != "jupyter-alice" for p in await pods(kube, namespace))

    await eventually(pod_gone, timeout=30)
    assert "ModuleNotFoundError" not in hub.full_log()  # the container's words: the user's only
    assert "exited with code 3" in hub.full_log()


async def test_a_broken_images_crash_loop_shows_the_crashed_instances_lines(hub_factory):
    """The demo's Broken Notebook: real jupyterhub-singleuser, whose Python cannot start."""
    hub = hub_factory(cmd=[str(Path(sys.executable).parent / "jupyterhub-singleuser")])
    await log_in(hub, "alice")
    options = {"group": "ml-team", "instance_type": "cpu-2", "image": "broken-notebook"}
    status, _ = await asyncio.to_thread(
        hub.api, "POST", "users/alice/server", {"user_options": options}
    )
    assert status in (202, 500)
    event = await asyncio.wait_for(outcome(hub, "alice"), 50)
    assert "exited with code 1" in event["message"], event
    assert "No module named &#x27;encodings&#x27;" in event["html_message"], event
