"""Starting and stopping a whole test ground leaves no process behind, even when parts are killed hard."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from devstack.ground import TestGround, processes_mentioning
from devstack.kubeapi import Credentials, KubeAPI
from devstack.testing import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _pod(name: str, marker: str) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "command": ["/bin/sh", "-c", f"trap '' TERM; sleep {marker}"],
                }
            ],
        },
    }


async def _running_pod(ground: TestGround, name: str, marker: str) -> None:
    async with KubeAPI(Credentials.from_kubeconfig(ground.kubeconfig)) as api:
        await api.post("/api/v1/namespaces/default/pods", _pod(name, marker))

        async def running():
            pod = await api.get(f"/api/v1/namespaces/default/pods/{name}")
            return pod["status"].get("phase") == "Running"

        await eventually(running, what=f"{name} running")


async def test_stop_leaves_no_processes(tmp_path):
    ground = await asyncio.to_thread(TestGround(tmp_path / "ground").start)
    try:
        await _running_pod(ground, "stubborn", "31340.5")
        pids = [ground.kubelet.pid, *(p.pid for p in ground.cluster.processes())]
        assert processes_mentioning("sleep 31340.5")
    finally:
        leftovers = await asyncio.to_thread(ground.stop)
    assert leftovers == []
    assert not processes_mentioning("sleep 31340.5")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_pods_die_with_a_killed_kubelet(tmp_path):
    ground = await asyncio.to_thread(TestGround(tmp_path / "ground").start)
    try:
        await _running_pod(ground, "orphan", "31341.5")
        os.kill(ground.kubelet.pid, signal.SIGKILL)

        async def gone():
            return not processes_mentioning("sleep 31341.5")

        await eventually(gone, timeout=10, what="pod processes to die with their kubelet")
    finally:
        assert await asyncio.to_thread(ground.stop) == []
