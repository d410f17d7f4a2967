"""restartPolicy on the local kubelet: crash loops with back-off, restart counts, previous logs."""

from __future__ import annotations

import re

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.config import new_client_from_config

from devstack.ground import TestGround
from devstack.testing import eventually
from tests.kubelet_pods import create, events_for, pod_body, read, run_to_end, wait_phase

pytestmark = pytest.mark.cluster
# Counts its runs in an emptyDir (which outlives container restarts), prints the run's number.
COUNTING = (
    'n=$(($(cat /state/runs 2>/dev/null || echo 0) + 1)); echo $n > /state/runs; echo "run $n"; '
)
STATE = {
    "volumes": [{"name": "state", "emptyDir": {}}],
    "mounts": [{"name": "state", "mountPath": "/state"}],
}


@pytest.fixture
async def core(test_ground: TestGround):
    """kubernetes_asyncio's CoreV1Api as cluster admin (what the product reads logs with)."""
    api_client = await new_client_from_config(config_file=str(test_ground.kubeconfig))
    async with api_client:
        yield client.CoreV1Api(api_client)


def main_status(pod: dict) -> dict:
    return next(s for s in pod["status"]["containerStatuses"] if s["name"] == "main")


def condition(pod: dict, kind: str) -> str:
    return next(c["status"] for c in pod["status"]["conditions"] if c["type"] == kind)


async def test_on_failure_restarts_a_failed_container_with_back_off(kube, namespace, core):
    script = COUNTING + 'if [ "$n" -lt 3 ]; then echo "crash $n" >&2; exit 2; fi; exec sleep 60'
    created = await create(
        kube, namespace, pod_body("crasher", script, restart="OnFailure", **STATE)
    )
    uid = created["metadata"]["uid"]

    async def third_run():
        pod = await read(kube, namespace, "crasher")
        status = main_status(pod) if pod["status"].get("containerStatuses") else {}
        return pod if status.get("restartCount") == 2 and "running" in status["state"] else None

    pod = await eventually(third_run, timeout=30, what="the third run, restarted twice")
    assert pod["status"]["phase"] == "Running" and condition(pod, "Ready") == "True"
    last = main_status(pod)["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (2, "Error")
    assert (
        last["startedAt"] <= last["finishedAt"] <= main_status(pod)["state"]["running"]["startedAt"]
    )
    assert last["containerID"] != main_status(pod)["containerID"]
    assert await core.read_namespaced_pod_log("crasher", namespace) == "run 3\n"
    previous = await core.read_namespaced_pod_log("crasher", namespace, previous=True)
    assert previous == "run 2\ncrash 2\n"
    back_offs = [
        e for e in await events_for(kube, namespace, "crasher") if e["reason"] == "BackOff"
    ]
    # kubelet restarts a first exit at once and backs off from the second on
    assert [(e["type"], e["message"], e["count"]) for e in back_offs] == [
        (
            "Warning",
            f"Back-off restarting failed container main in pod crasher_{namespace}({uid})",
            1,
        )
    ]
    assert back_offs[0]["involvedObject"]["fieldPath"] == "spec.containers{main}"


async def test_always_restarts_a_completed_container_in_crash_loop_back_off(kube, namespace, core):
    created = await create(kube, namespace, pod_body("looper", COUNTING, restart="Always", **STATE))
    uid = created["metadata"]["uid"]

    async def backing_off():
        pod = await read(kube, namespace, "looper")
        status = main_status(pod) if pod["status"].get("containerStatuses") else {}
        waiting = status.get("state", {}).get("waiting", {})
        return (
            pod
            if status.get("restartCount", 0) >= 2 and waiting.get("reason") == "CrashLoopBackOff"
            else None
        )

    pod = await eventually(backing_off, timeout=30, what="CrashLoopBackOff after two restarts")
    status = main_status(pod)
    pattern = rf"back-off (\d+)s restarting failed container=main pod=looper_{namespace}\({uid}\)"
    match = re.fullmatch(pattern, status["state"]["waiting"]["message"])
    assert match and int(match[1]) >= 2, status["state"]["waiting"]["message"]
    last = status["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (0, "Completed")
    assert pod["status"]["phase"] == "Running"
    assert (condition(pod, "Ready"), condition(pod, "ContainersReady")) == ("False", "False")
    assert status["ready"] is False and status["started"] is False
    # Waiting to run again: the log, and the previous log, are the run that ended
    ended_run = f"run {status['restartCount'] + 1}\n"
    assert await core.read_namespaced_pod_log("looper", namespace) == ended_run
    assert await core.read_namespaced_pod_log("looper", namespace, previous=True) == ended_run
    await kube.delete(f"/api/v1/namespaces/{namespace}/pods/looper")

    async def gone():
        return await read(kube, namespace, "looper") is None

    await eventually(gone, timeout=10, what="the crash-looping pod deleted")


@pytest.mark.parametrize(
    ("restart", "script", "phase"),
    [
        ("OnFailure", "exit 0", "Succeeded"),
        ("Never", "exit 4", "Failed"),
        ("Never", "true", "Succeeded"),
    ],
)
async def test_containers_that_ended_for_good_end_the_pod(kube, namespace, restart, script, phase):
    pod = await run_to_end(kube, namespace, pod_body("ends", script, restart=restart))
    assert pod["status"]["phase"] == phase
    assert main_status(pod)["restartCount"] == 0
    assert "lastState" not in main_status(pod) or not main_status(pod)["lastState"]


async def test_a_failed_init_container_runs_again_under_on_failure(kube, namespace):
    body = pod_body("init-retry", "exec sleep 60", restart="OnFailure", **STATE)
    body["spec"]["initContainers"] = [
        {
            "name": "setup",
            "image": "busybox",
            "command": ["/bin/sh", "-c", COUNTING + '[ "$n" -ge 2 ]'],
            "volumeMounts": [{"name": "state", "mountPath": "/state"}],
        }
    ]
    await create(kube, namespace, body)
    pod = await wait_phase(kube, namespace, "init-retry", "Running", timeout=30)
    init = pod["status"]["initContainerStatuses"][0]
    assert init["restartCount"] == 1
    assert init["state"]["terminated"]["exitCode"] == 0
    assert init["lastState"]["terminated"]["exitCode"] == 1
