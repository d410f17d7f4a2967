"""`python -m devstack demo` end to end over HTTP: the whole stack from the project's own
jupyterhub_config.py, a login, a launch from the form, a real notebook server answering through the
proxy, and every process gone after SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devstack.ground import processes_mentioning
from devstack.hub import oauth_login
from devstack.processes import free_port
from devstack.testing import eventually
from tests.hub_stack import xsrf

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


async def test_demo_launches_a_real_notebook_and_stops_cleanly(tmp_path):
    state = tmp_path / "demo"
    hub_port, identity_port = free_port(), free_port()
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack",
            "demo",
            "--state-dir",
            str(state),
            "--hub-port",
            str(hub_port),
            "--identity-port",
            str(identity_port),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    hub = f"http://127.0.0.1:{hub_port}"
    try:

        async def ready():
            return "primehub_spawner demo is running." in (tmp_path / "demo.log").read_text()

        await eventually(ready, timeout=180, interval=0.5, what="the demo to come up")
        async with httpx.AsyncClient(timeout=30) as http:
            await oauth_login(http, hub, "alice")
            page = (await http.get(f"{hub}/hub/spawn")).text
            token = xsrf(page)
            launched = await http.post(
                f"{hub}/hub/spawn",
                data={
                    "_xsrf": token,
                    "group": "ml-team",
                    "instance_type.ml-team": "cpu-2",
                    "image.ml-team": "base-notebook",
                },
            )
            assert launched.status_code in (200, 302), launched.text[:500]

            async def lab_answers():
                # The page first (the single-user server's OAuth with the hub sets its cookie), then its API.
                lab = await http.get(f"{hub}/user/alice/lab", follow_redirects=True)
                if lab.status_code != 200 or "JupyterLab" not in lab.text:
                    return False
                xsrf = http.cookies.get("_xsrf", path="/user/alice/") or ""
                status = await http.get(
                    f"{hub}/user/alice/api/status", headers={"X-XSRFToken": xsrf}
                )
                return status.status_code == 200 and "started" in status.json()

            await eventually(
                lab_answers, timeout=120, interval=1, what="JupyterLab through the proxy"
            )
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(90)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
        log.close()
    assert demo.returncode == 0, (tmp_path / "demo.log").read_text()[-3000:]
    await asyncio.sleep(1)
    assert processes_mentioning(str(state)) == []  # etcd, apiserver, kubelet, pods, identity server
    for port in (
        hub_port,
        identity_port,
        8081,
    ):  # the hub, its proxy and the identity server are gone
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
