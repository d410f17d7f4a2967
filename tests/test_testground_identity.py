"""Containers run as real host users on the local kubelet: uids, groups, capabilities, fsGroup."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devstack.ground import TestGround
from devstack.testing import eventually
from tests.kubelet_pods import create, pod_body, read, run_to_end

pytestmark = pytest.mark.cluster
CAPABILITIES = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status | tr -d '\\t'"
NO_CAPABILITIES = [
    f"{kind}:0000000000000000" for kind in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
]


def owner(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid


async def claim_dir(kube, test_ground: TestGround, namespace: str, name: str) -> Path:
    await kube.post(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )

    async def bound():
        claim = await kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}")
        return claim["spec"].get("volumeName")

    volume = await kube.get(f"/api/v1/persistentvolumes/{await eventually(bound, what='bound')}")
    return test_ground.host_dir("hostpath", *Path(volume["spec"]["hostPath"]["path"]).parts[1:])


async def test_a_user_writes_the_volumes_fs_group_opens_and_no_other(
    kube, namespace, test_ground: TestGround
):
    home = await claim_dir(kube, test_ground, namespace, "home")
    await kube.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "token"}, "stringData": {"token": "s3cret"}},
    )
    script = (
        'echo "id $(id -u):$(id -g) $(id -G)"; ' + CAPABILITIES + "; "
        "echo a > /scratch/f && echo scratch $(stat -c %u:%g /scratch/f); "
        "echo b > /home/jovyan/f && echo home $(stat -c %u:%g /home/jovyan/f); "
        "touch /data/f 2>&1; touch /project/f 2>&1; echo token $(cat /secret/token); "
        "python -c 'import sys; print(\"python\", sys.version_info[0])'"  # under root's home
    )
    body = pod_body(
        "user",
        script,
        volumes=[
            {"name": "scratch", "emptyDir": {}},
            {"name": "home", "persistentVolumeClaim": {"claimName": "home"}},
            {"name": "data", "hostPath": {"path": "/srv/shared", "type": "DirectoryOrCreate"}},
            {"name": "project", "nfs": {"server": "nfs.example", "path": "/exports/team"}},
            {"name": "secret", "secret": {"secretName": "token", "defaultMode": 0o440}},
        ],
        mounts=[
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "home", "mountPath": "/home/jovyan"},
            {"name": "data", "mountPath": "/data"},
            {"name": "project", "mountPath": "/project"},
            {"name": "secret", "mountPath": "/secret"},
        ],
    )
    body["spec"]["securityContext"] = {"runAsUser": 1000, "fsGroup": 100}
    pod = await run_to_end(kube, namespace, body)
    uid = pod["metadata"]["uid"]
    lines = test_ground.pod_log(uid, "main").splitlines()
    assert pod["status"]["phase"] == "Succeeded", lines
    assert lines == [
        "id 1000:0 0 100",
        *NO_CAPABILITIES,
        "scratch 1000:100",  # the emptyDir is the fsGroup's, setgid: new files are too
        "home 1000:100",
        "touch: cannot touch '/data/f': Permission denied",  # hostPath and nfs stay root's
        "touch: cannot touch '/project/f': Permission denied",
        "token s3cret",  # 0440, readable through the fsGroup
        "python 3",
    ]
    # On the host, as the node's disks would show them
    assert owner(home / "f") == (1000, 100)
    assert owner(home)[1] == 100 and home.stat().st_mode & stat.S_ISGID
    scratch = test_ground.state_dir / "kubelet" / "pods" / uid / "volumes" / "scratch"
    assert owner(scratch / "f") == (1000, 100)
    for directory in (
        test_ground.host_dir("hostpath", "srv", "shared"),
        test_ground.host_dir("nfs", "nfs.example", "exports", "team"),
    ):
        assert owner(directory) == (0, 0)
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
        assert os.listdir(directory) == []


async def test_a_root_init_container_with_chown_hands_a_host_path_to_the_user(
    kube, namespace, test_ground: TestGround
):
    data = {"name": "data", "mountPath": "/data"}
    body = pod_body(
        "handover",
        "echo mine > /data/f",
        volumes=[
            {"name": "data", "hostPath": {"path": "/srv/handover", "type": "DirectoryOrCreate"}}
        ],
        mounts=[data],
    )
    body["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100}
    root = {"runAsUser": 0, "runAsGroup": 0}
    body["spec"]["initContainers"] = [
        {  # root without capabilities may not chown
            "name": "powerless",
            "image": "busybox",
            "command": [
                "/bin/sh",
                "-c",
                f"if chown 1000:100 /data; then exit 1; fi; {CAPABILITIES}",
            ],
            "volumeMounts": [data],
            "securityContext": {**root, "capabilities": {"drop": ["ALL"]}},
        },
        {
            "name": "prepare",
            "image": "busybox",
            "command": ["/bin/sh", "-c", f"chown 1000:100 /data && {CAPABILITIES}"],
            "volumeMounts": [data],
            "securityContext": {**root, "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}},
        },
    ]
    pod = await run_to_end(kube, namespace, body)
    uid = pod["metadata"]["uid"]
    assert pod["status"]["phase"] == "Succeeded", [
        test_ground.pod_log(uid, name) for name in ("powerless", "prepare", "main")
    ]
    assert test_ground.pod_log(uid, "powerless").splitlines()[-5:] == NO_CAPABILITIES
    chown = "0000000000000001"  # CAP_CHOWN alone
    assert test_ground.pod_log(uid, "prepare").splitlines() == [
        "CapInh:0000000000000000",
        f"CapPrm:{chown}",
        f"CapEff:{chown}",
        f"CapBnd:{chown}",
        "CapAmb:0000000000000000",
    ]
    directory = test_ground.host_dir("hostpath", "srv", "handover")
    assert owner(directory) == (1000, 100) and owner(directory / "f") == (1000, 100)


async def test_exec_hooks_run_as_the_containers_user(kube, namespace, test_ground: TestGround):
    body = pod_body(
        "hooked",
        "while [ ! -s /scratch/hook ]; do sleep 0.05; done; cat /scratch/hook",
        volumes=[{"name": "scratch", "emptyDir": {}}],
        mounts=[{"name": "scratch", "mountPath": "/scratch"}],
        lifecycle={
            "postStart": {
                "exec": {
                    "command": [
                        "/bin/sh",
                        "-c",
                        f"{{ id -u; id -G; {CAPABILITIES}; }} > /scratch/hook.tmp; "
                        "mv /scratch/hook.tmp /scratch/hook",
                    ]
                }
            }
        },
    )
    body["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100}
    pod = await run_to_end(kube, namespace, body)
    lines = test_ground.pod_log(pod["metadata"]["uid"], "main").splitlines()
    assert pod["status"]["phase"] == "Succeeded", lines
    assert lines == ["1000", "100", *NO_CAPABILITIES]


async def test_run_as_non_root_refuses_a_root_container(kube, namespace):
    body = pod_body("rooted", "true")
    body["spec"]["securityContext"] = {"runAsNonRoot": True}
    created = await create(kube, namespace, body)

    async def refused():
        pod = await read(kube, namespace, "rooted")
        statuses = pod["status"].get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting", {}).get("message")

    message = await eventually(refused, what="CreateContainerConfigError")
    meta = created["metadata"]
    assert message == (
        "container has runAsNonRoot and image will run as root "
        f'(pod: "rooted_{namespace}({meta["uid"]})", container: main)'
    )
