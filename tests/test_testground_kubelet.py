"""The local kubelet against the real API server: scheduling, sandboxed mounts, env, hooks, status, deletion."""

from __future__ import annotations

import asyncio
import os
import urllib.request
from pathlib import Path

import pytest

from devstack.ground import TestGround, processes_mentioning
from devstack.kubeapi import KubeAPI
from devstack.testing import eventually
from tests.kubelet_pods import create, events_for, exit_code, pod_body, read, run_to_end, wait_phase

pytestmark = pytest.mark.cluster
GPU_TOLERATION = {
    "key": "nvidia.com/gpu",
    "operator": "Equal",
    "value": "present",
    "effect": "NoSchedule",
}


async def test_read_only_and_read_write_mounts(kube, namespace, test_ground: TestGround):
    host_before = {p: os.path.exists(p) for p in ("/datasets", "/home/jovyan", "/project")}
    script = (
        "set -e; echo written > /home/jovyan/home.txt; echo shared > /project/ml/group.txt; "
        "cat /datasets/imagenet/labels.txt; "
        "if echo x > /datasets/imagenet/new.txt; then exit 10; fi; "
        "if touch /datasets/imagenet/labels.txt; then exit 11; fi; "
        "if mount -o remount,rw /datasets/imagenet 2>/dev/null; then exit 12; fi"
    )
    dataset_dir = test_ground.host_dir("hostpath", "srv", "datasets", "imagenet")
    dataset_dir.mkdir(parents=True, exist_ok=True)
    (dataset_dir / "labels.txt").write_text("cat\ndog\n")
    await kube.post(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "metadata": {"name": "claim-alice"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    body = pod_body(
        "mounts",
        script,
        volumes=[
            {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}},
            {"name": "project", "nfs": {"server": "nfs.example", "path": "/exports/projects"}},
            {
                "name": "dataset",
                "hostPath": {"path": "/srv/datasets/imagenet", "type": "Directory"},
            },
        ],
        mounts=[
            {"name": "home", "mountPath": "/home/jovyan"},
            {"name": "project", "mountPath": "/project/ml", "subPath": "ml"},
            {"name": "dataset", "mountPath": "/datasets/imagenet", "readOnly": True},
        ],
    )
    pod = await run_to_end(kube, namespace, body)
    assert pod["status"]["phase"] == "Succeeded", test_ground.pod_log(
        pod["metadata"]["uid"], "main"
    )
    claim = await kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/claim-alice")
    assert claim["status"]["phase"] == "Bound"
    volume = await kube.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    home = test_ground.host_dir("hostpath", *Path(volume["spec"]["hostPath"]["path"]).parts[1:])
    assert (home / "home.txt").read_text() == "written\n"
    assert (
        test_ground.host_dir("nfs", "nfs.example", "exports", "projects", "ml", "group.txt")
    ).exists()
    assert sorted(p.name for p in dataset_dir.iterdir()) == ["labels.txt"]
    assert {p: os.path.exists(p) for p in host_before} == host_before  # nothing created on the host


async def test_pods_cannot_see_the_test_grounds_state(kube, namespace, test_ground: TestGround):
    secret_file = test_ground.kubeconfig
    assert secret_file.exists()
    body = pod_body(
        "snoop", f'test ! -e {secret_file} && test -z "$(ls -A {test_ground.state_dir})"'
    )
    pod = await run_to_end(kube, namespace, body)
    assert pod["status"]["phase"] == "Succeeded"


async def test_run_as_user_owns_the_images_home_and_may_write_tmp(kube, namespace, test_ground):
    # The "image" is built for the user it runs as: its /home/jovyan (no volume there) is the
    # user's; /tmp and /dev/shm are a container's usual 1777.
    script = (
        'test "$(id -u):$(id -g)" = "1000:100" && test "$(stat -c %u:%g /home/jovyan)" = 1000:100 '
        '&& touch /home/jovyan/mine && test "$(stat -c %a /tmp /dev/shm)" = "1777\n1777" '
        "&& touch /tmp/mine /dev/shm/mine"
    )
    body = pod_body("uid", script, securityContext={"runAsUser": 1000, "runAsGroup": 100})
    pod = await run_to_end(kube, namespace, body)
    assert pod["status"]["phase"] == "Succeeded", test_ground.pod_log(
        pod["metadata"]["uid"], "main"
    )


async def test_gpu_pod_without_a_fitting_node_stays_pending(kube, namespace):
    body = pod_body("wants-gpu", "sleep 60", resources={"limits": {"nvidia.com/gpu": "1"}})
    await create(kube, namespace, body)
    expected = (
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, "
        "1 node(s) had taint {nvidia.com/gpu: present}, that the pod didn't tolerate."
    )

    async def failed_scheduling():
        return [
            e
            for e in await events_for(kube, namespace, "wants-gpu")
            if e["reason"] == "FailedScheduling"
        ]

    events = await eventually(failed_scheduling, what="FailedScheduling event")
    assert events[0]["message"] == expected
    assert (
        events[0]["type"] == "Warning" and events[0]["source"]["component"] == "default-scheduler"
    )
    await asyncio.sleep(1.0)
    pod = await read(kube, namespace, "wants-gpu")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    condition = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "Unschedulable",
        expected,
    )


async def test_gpu_pods_fill_the_gpu_node_then_wait(kube, namespace):
    gpu = {"limits": {"nvidia.com/gpu": "1", "cpu": "100m", "memory": "64Mi"}}
    for name in ("gpu-a", "gpu-b"):
        await create(
            kube,
            namespace,
            pod_body(name, "sleep 60", resources=gpu, restart="Always")
            | {
                "spec": pod_body(name, "sleep 60", resources=gpu)["spec"]
                | {"tolerations": [GPU_TOLERATION]}
            },
        )
    for name in ("gpu-a", "gpu-b"):
        pod = await wait_phase(kube, namespace, name, "Running")
        assert pod["spec"]["nodeName"] == "gpu-node"
    third = pod_body("gpu-c", "sleep 60", resources=gpu)
    third["spec"]["tolerations"] = [GPU_TOLERATION]
    await create(kube, namespace, third)

    async def insufficient():
        return [
            e["message"]
            for e in await events_for(kube, namespace, "gpu-c")
            if e["reason"] == "FailedScheduling"
        ]

    messages = await eventually(insufficient, what="FailedScheduling for the third GPU pod")
    assert (
        messages[0]
        == "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had taint "
        "{nvidia.com/gpu: present}, that the pod didn't tolerate."
        or messages[0] == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    )
    await kube.delete(f"/api/v1/namespaces/{namespace}/pods/gpu-a")
    pod = await wait_phase(kube, namespace, "gpu-c", "Running", timeout=30)
    assert pod["spec"]["nodeName"] == "gpu-node"


async def test_deletion_sends_sigterm_then_sigkill_after_the_grace_period(kube, namespace):
    marker = "31337.25"
    body = pod_body("stubborn", f"trap '' TERM; sleep {marker}")
    body["spec"]["terminationGracePeriodSeconds"] = 2
    await create(kube, namespace, body)
    await wait_phase(kube, namespace, "stubborn", "Running")
    assert processes_mentioning(f"sleep {marker}")
    loop = asyncio.get_running_loop()
    started = loop.time()
    path = f"/api/v1/namespaces/{namespace}/pods/stubborn"
    await kube.delete(path)
    await asyncio.sleep(0.3)
    # Any change during termination (or the kubelet's periodic relist) delivers the terminating
    # pod again; that must not cut the grace period short.
    await kube.patch(path, {"metadata": {"annotations": {"touched": "during-termination"}}})
    await eventually(lambda: _gone(kube, namespace, "stubborn"), timeout=15, what="pod deleted")
    elapsed = loop.time() - started
    assert 1.5 <= elapsed < 8, elapsed  # waited for the grace period, then killed
    assert not processes_mentioning(f"sleep {marker}")
    reasons = [e["reason"] for e in await events_for(kube, namespace, "stubborn")]
    assert "Killing" in reasons


async def test_deletion_of_a_pod_that_handles_sigterm_is_quick(kube, namespace):
    marker = "31338.5"
    await create(kube, namespace, pod_body("polite", f"trap 'exit 0' TERM; sleep {marker} & wait"))
    await wait_phase(kube, namespace, "polite", "Running")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await kube.delete(f"/api/v1/namespaces/{namespace}/pods/polite")
    await eventually(lambda: _gone(kube, namespace, "polite"), timeout=10, what="pod deleted")
    assert loop.time() - started < 1.5
    await eventually(lambda: _no_process(f"sleep {marker}"), timeout=5, what="processes gone")


async def _gone(kube: KubeAPI, namespace: str, name: str) -> bool:
    return await read(kube, namespace, name) is None


async def _no_process(text: str) -> bool:
    return not processes_mentioning(text)


async def test_env_from_values_secrets_config_maps_and_fields(
    kube, namespace, test_ground: TestGround
):
    await kube.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}},
    )
    await kube.post(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "settings"}, "data": {"TZ": "Asia/Taipei", "mode": "dark"}},
    )
    script = (
        'test "$TOKEN" = s3cret && test "$TZ" = Asia/Taipei && test "$CFG_mode" = dark '
        '&& test "$POD_NAME" = env && test "$GREETING" = "hello env" && test -n "$POD_IP" '
        '&& test "$MEM" = 64 && test "$HOSTNAME" = env'
    )
    body = pod_body(
        "env",
        script,
        resources={"limits": {"memory": "64Mi"}},
        envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
    )
    body["spec"]["containers"][0]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "TZ", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "TZ"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {
            "name": "MEM",
            "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
        },
        {"name": "GREETING", "value": "hello $(POD_NAME)"},
    ]
    pod = await run_to_end(kube, namespace, body)
    assert pod["status"]["phase"] == "Succeeded", test_ground.pod_log(
        pod["metadata"]["uid"], "main"
    )


async def test_missing_secret_is_a_config_error_until_it_exists(kube, namespace):
    body = pod_body("later", 'test "$TOKEN" = ok')
    body["spec"]["containers"][0]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "late", "key": "token"}}}
    ]
    await create(kube, namespace, body)

    async def config_error():
        pod = await read(kube, namespace, "later")
        state = pod["status"].get("containerStatuses", [{}])[0].get("state", {})
        return state.get("waiting", {}).get("reason") == "CreateContainerConfigError" and state

    state = await eventually(config_error, what="CreateContainerConfigError")
    assert state["waiting"]["message"] == 'secret "late" not found'
    await kube.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "late"}, "stringData": {"token": "ok"}},
    )
    pod = await wait_phase(kube, namespace, "later", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded"


async def test_init_containers_run_in_order_and_post_start_runs_inside(
    kube, namespace, test_ground
):
    body = pod_body(
        "ordered",
        'while [ ! -f /work/hook ]; do sleep 0.05; done; test "$(cat /work/order)" = "one two" '
        '&& test "$(cat /work/hook)" = "$HOSTNAME"',
        volumes=[{"name": "work", "emptyDir": {}}],
        mounts=[{"name": "work", "mountPath": "/work"}],
        lifecycle={"postStart": {"exec": {"command": ["/bin/sh", "-c", "hostname > /work/hook"]}}},
    )
    body["spec"]["initContainers"] = [
        {
            "name": "first",
            "image": "busybox",
            "command": ["/bin/sh", "-c", "echo -n one > /work/order"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        },
        {
            "name": "second",
            "image": "busybox",
            "command": ["/bin/sh", "-c", "echo -n ' two' >> /work/order"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        },
    ]
    pod = await run_to_end(kube, namespace, body)
    assert pod["status"]["phase"] == "Succeeded", test_ground.pod_log(
        pod["metadata"]["uid"], "main"
    )
    assert [
        s["state"]["terminated"]["exitCode"] for s in pod["status"]["initContainerStatuses"]
    ] == [0, 0]
    started = [
        e["involvedObject"].get("fieldPath")
        for e in await events_for(kube, namespace, "ordered")
        if e["reason"] == "Started"
    ]
    assert started == [
        "spec.initContainers{first}",
        "spec.initContainers{second}",
        "spec.containers{main}",
    ]


async def test_failing_init_container_fails_the_pod(kube, namespace):
    body = pod_body("init-fails", "true")
    body["spec"]["initContainers"] = [
        {"name": "setup", "image": "busybox", "command": ["/bin/sh", "-c", "exit 7"]}
    ]
    await create(kube, namespace, body)
    pod = await wait_phase(kube, namespace, "init-fails", "Failed")
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 7


@pytest.mark.parametrize(
    ("working_dir", "expected"), [(None, "/home/jovyan"), ("/tmp", "/tmp")], ids=["image", "pod"]
)
async def test_containers_start_in_the_images_workdir_or_the_pods(
    kube, namespace, working_dir, expected
):
    container = {"workingDir": working_dir} if working_dir else {}
    body = pod_body("workdir", f'test "$(pwd)" = {expected}', **container)
    assert (await run_to_end(kube, namespace, body))["status"]["phase"] == "Succeeded"


@pytest.mark.parametrize(
    ("script", "phase", "code"), [("exit 0", "Succeeded", 0), ("exit 3", "Failed", 3)]
)
async def test_exit_codes_end_the_pod(kube, namespace, script, phase, code):
    pod = await run_to_end(kube, namespace, pod_body("exits", script))
    assert pod["status"]["phase"] == phase
    assert exit_code(pod) == code
    reason = pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"]
    assert reason == ("Completed" if code == 0 else "Error")


async def test_pods_listen_on_the_same_port_at_their_own_ip(kube, namespace):
    server = [os.fspath(Path(os.sys.executable)), "-m", "http.server", "8888"]
    for name in ("web-a", "web-b"):
        body = pod_body(name, "")
        body["spec"]["containers"][0].update(command=server, ports=[{"containerPort": 8888}])
        await create(kube, namespace, body)
    pods = [await wait_phase(kube, namespace, name, "Running") for name in ("web-a", "web-b")]
    ips = [pod["status"]["podIP"] for pod in pods]
    assert len(set(ips)) == 2 and all(ip.startswith("127.") and ip != "127.0.0.1" for ip in ips)
    for ip in ips:

        async def answers(ip=ip):
            try:
                return await asyncio.to_thread(
                    lambda: urllib.request.urlopen(f"http://{ip}:8888/", timeout=2).status
                )
            except OSError:
                return None

        assert await eventually(answers, what=f"http on {ip}:8888") == 200
    status = pods[0]["status"]
    assert status["containerStatuses"][0]["ready"] is True
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"


async def test_secret_and_config_map_volumes_are_files(kube, namespace):
    await kube.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "ssh"}, "stringData": {"id_rsa": "KEY"}},
    )
    await kube.post(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "startup"}, "data": {"a.sh": "echo a", "b.sh": "echo b"}},
    )
    body = pod_body(
        "files",
        'test "$(cat /etc/ssh-keys/key)" = KEY && test "$(cat /startup/a.sh)" = "echo a" '
        "&& ! touch /startup/c.sh 2>/dev/null",
        volumes=[
            {
                "name": "ssh",
                "secret": {"secretName": "ssh", "items": [{"key": "id_rsa", "path": "key"}]},
            },
            {"name": "startup", "configMap": {"name": "startup"}},
        ],
        mounts=[
            {"name": "ssh", "mountPath": "/etc/ssh-keys"},
            {"name": "startup", "mountPath": "/startup"},
        ],
    )
    pod = await run_to_end(kube, namespace, body)
    assert pod["status"]["phase"] == "Succeeded"


async def test_event_sequence_of_a_started_pod(kube, namespace):
    await create(kube, namespace, pod_body("events", "sleep 30"))
    await wait_phase(kube, namespace, "events", "Running")
    events = await events_for(kube, namespace, "events")
    by_source = {
        source: [e["reason"] for e in events if e["source"]["component"] == source]
        for source in ("default-scheduler", "kubelet")
    }
    # As in a real cluster, scheduler and kubelet post independently: order holds within each.
    assert by_source == {
        "default-scheduler": ["Scheduled"],
        "kubelet": ["Pulled", "Created", "Started"],
    }
    assert all(e["lastTimestamp"] for e in events)  # KubeSpawner's progress reads it


async def test_unpullable_image_waits_in_image_pull_back_off(kube, namespace, test_ground):
    # The demo's node config marks images matching "*:does-not-exist" as unpullable.
    body = pod_body("bad-image", "true", image="example.org/notebook:does-not-exist")
    await create(kube, namespace, body)

    async def backoff():
        pod = await read(kube, namespace, "bad-image")
        statuses = pod["status"].get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting", {}).get("reason") == "ImagePullBackOff"

    await eventually(backoff, what="ImagePullBackOff")
    messages = [e["message"] for e in await events_for(kube, namespace, "bad-image")]
    assert "Error: ErrImagePull" in messages


async def test_namespace_deletion_stops_its_pods_and_finishes(kube, test_ground):
    await kube.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    await create(kube, "doomed", pod_body("resident", "sleep 31339.5"))
    await wait_phase(kube, "doomed", "resident", "Running")
    await kube.delete("/api/v1/namespaces/doomed")

    async def namespace_gone():
        return await kube.get_or_none("/api/v1/namespaces/doomed") is None

    await eventually(namespace_gone, timeout=30, what="namespace finalized")
    assert not processes_mentioning("sleep 31339.5")
