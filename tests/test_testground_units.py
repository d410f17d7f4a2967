"""Pure parts of the test ground: scheduling decisions, the sandbox's root, env expansion, PV matching."""

from decimal import Decimal
from pathlib import Path

import pytest

from devstack.kubelet.config import KubeletConfig, NodeSpec, Taint
from devstack.kubelet.controllers import volume_fits
from devstack.kubelet.environment import expand
from devstack.kubelet.identity import Identity, container_identity
from devstack.kubelet.sandbox import Mount, bwrap_argv, root_args
from devstack.kubelet.scheduler import pod_requests, schedule, tolerates, volume_blocker

CPU = NodeSpec(
    "cpu-node", labels={"component": "singleuser-server"}, capacity={"cpu": "2", "memory": "4Gi"}
)
GPU = NodeSpec(
    "gpu-node",
    labels={"component": "singleuser-server"},
    taints=(Taint("nvidia.com/gpu", "NoSchedule", "present"),),
    capacity={"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "2"},
)
GPU_TOLERATION = {
    "key": "nvidia.com/gpu",
    "operator": "Equal",
    "value": "present",
    "effect": "NoSchedule",
}


def pod(cpu="100m", memory="128Mi", gpu=None, tolerations=(), selector=None, init=None, **extra):
    limits = {"cpu": cpu, "memory": memory}
    if gpu:
        limits["nvidia.com/gpu"] = gpu
    spec = {
        "containers": [{"name": "c", "resources": {"limits": limits}}],
        "tolerations": list(tolerations),
        **extra,
    }
    if selector:
        spec["nodeSelector"] = selector
    if init:
        spec["initContainers"] = [{"name": "i", "resources": {"requests": init}}]
    return spec


@pytest.mark.parametrize(
    ("spec", "used", "node", "message"),
    [
        (pod(), {}, "cpu-node", ""),  # the GPU node's taint is not tolerated
        (pod(gpu="1", tolerations=[GPU_TOLERATION]), {}, "gpu-node", ""),
        (
            pod(gpu="1"),
            {},
            None,
            "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, "
            "1 node(s) had taint {nvidia.com/gpu: present}, that the pod didn't tolerate.",
        ),
        (
            pod(gpu="3", tolerations=[GPU_TOLERATION]),
            {},
            None,
            "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
        ),
        (
            pod(gpu="1", tolerations=[GPU_TOLERATION]),
            {"gpu-node": {"nvidia.com/gpu": Decimal(2)}},
            None,
            "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
        ),
        (
            pod(cpu="3"),
            {},
            None,
            "0/2 nodes are available: 1 Insufficient cpu, "
            "1 node(s) had taint {nvidia.com/gpu: present}, that the pod didn't tolerate.",
        ),
        (pod(memory="5Gi", tolerations=[{"operator": "Exists"}]), {}, "gpu-node", ""),
        (
            pod(selector={"component": "hub"}, tolerations=[{"operator": "Exists"}]),
            {},
            None,
            "0/2 nodes are available: 2 node(s) didn't match node selector.",
        ),
        (
            pod(init={"cpu": "1500m"}, tolerations=[{"operator": "Exists"}]),
            {"cpu-node": {"cpu": Decimal("1")}},
            "gpu-node",
            "",
        ),
    ],
    ids=[
        "plain",
        "gpu-tolerated",
        "gpu-untolerated",
        "gpu-too-many",
        "gpu-exhausted",
        "cpu-too-big",
        "memory-fits-gpu-node",
        "selector-mismatch",
        "init-container-request",
    ],
)
def test_schedule(spec, used, node, message):
    decision = schedule(spec, [CPU, GPU], used)
    assert decision.node == node
    assert decision.message == message


def test_plain_pod_prefers_the_emptier_node_and_breaks_ties_by_name():
    spec = pod(tolerations=[{"operator": "Exists"}])
    assert schedule(spec, [CPU, GPU], {}).node == "gpu-node"  # twice the free cpu and memory
    twin = NodeSpec("a-node", capacity=GPU.capacity)
    assert schedule(spec, [GPU, twin], {}).node == "a-node"


def test_requests_default_to_limits_and_init_containers_take_the_max():
    spec = pod(cpu="1", memory="1Gi", init={"cpu": "2"})
    requests = pod_requests(spec)
    assert requests["cpu"] == Decimal(2)
    assert requests["memory"] == Decimal(1024**3)
    assert requests["pods"] == Decimal(1)


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True),
        ({"key": "nvidia.com/gpu", "value": "present"}, True),
        ({"key": "nvidia.com/gpu", "value": "absent"}, False),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_tolerations(toleration, expected):
    assert tolerates([toleration], Taint("nvidia.com/gpu", "NoSchedule", "present")) is expected


def test_node_affinity_expressions():
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "nvidia.com/gpu.present", "operator": "DoesNotExist"}
                        ]
                    }
                ]
            }
        }
    }
    gpu_labelled = NodeSpec("g", labels={"nvidia.com/gpu.present": "true"})
    spec = pod(affinity=affinity)
    assert schedule(spec, [gpu_labelled, CPU], {}).node == "cpu-node"
    assert schedule(spec, [gpu_labelled], {}).message == (
        "0/1 nodes are available: 1 node(s) didn't match node selector."
    )


def test_volume_blocker():
    spec = {"volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-a"}}]}
    assert volume_blocker(spec, {}) == 'persistentvolumeclaim "claim-a" not found'
    assert volume_blocker(spec, {"claim-a": {"status": {"phase": "Pending"}}}) == (
        "pod has unbound immediate PersistentVolumeClaims"
    )
    assert volume_blocker(spec, {"claim-a": {"status": {"phase": "Bound"}}}) is None


def _operations(args: list[str]) -> list[tuple[str, ...]]:
    arity = {"--ro-bind": 2, "--bind": 2, "--symlink": 2, "--dir": 1, "--tmpfs": 1, "--perms": 1}
    operations, index = [], 0
    while index < len(args):
        count = arity[args[index]]
        operations.append(tuple(args[index : index + count + 1]))
        index += count + 1
    return operations


def test_root_mirrors_host_without_creating_mount_targets(tmp_path: Path):
    for name in ("usr", "etc", "home/someone", "proc", "tmp"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    operations = _operations(root_args(["/home/jovyan", "/datasets/x"], host_root=tmp_path))
    assert ("--ro-bind", str(tmp_path / "usr"), "/usr") in operations
    assert ("--symlink", "usr/bin", "/bin") in operations
    assert ("--dir", "/home") in operations  # rebuilt entry by entry, not bound whole
    assert ("--ro-bind", str(tmp_path / "home/someone"), "/home/someone") in operations
    assert not any(op[-1] in ("/proc", "/tmp", "/home/jovyan", "/datasets") for op in operations)
    assert not (tmp_path / "home/jovyan").exists() and not (tmp_path / "datasets").exists()


def test_bwrap_argv_orders_mounts_parent_first_and_keeps_env_off_the_command_line():
    argv = bwrap_argv(
        command=["jupyterhub-singleuser"],
        mounts=[
            Mount("/home/jovyan/work", Path("/s/work")),
            Mount("/home/jovyan", Path("/s/home")),
            Mount("/datasets/a", Path("/s/a"), read_only=True),
        ],
        hostname="jupyter-alice",
        workdir="/home/jovyan",
        identity=Identity(uid=1000, gid=100),
        podnet_so=None,
    )
    home, work = argv.index("/home/jovyan"), argv.index("/home/jovyan/work")
    assert home < work
    assert argv[argv.index("/s/a") - 1] == "--ro-bind"
    assert argv[-2:] == ["--", "jupyterhub-singleuser"]
    assert "--setenv" not in argv


def test_interpreter_under_tmp_stays_visible_over_the_private_tmp():
    argv = bwrap_argv(
        command=["python3"],
        mounts=[],
        hostname="h",
        workdir=None,
        identity=Identity(),
        podnet_so=None,
        runtime_paths=[Path("/tmp/checkout/.venv"), Path("/usr")],
    )
    private_tmp = argv.index("/tmp")
    assert argv[argv.index("/tmp/checkout/.venv") - 1] == "--ro-bind"
    assert argv.index("/tmp/checkout/.venv") > private_tmp  # bound on top of the fresh tmpfs
    assert argv.count("/usr") == 2  # once from the host mirror only


def test_a_non_root_container_changes_identity_through_setpriv_without_a_user_namespace():
    identity = Identity(uid=1000, gid=100, groups=(100, 5))
    argv = bwrap_argv(
        command=["id"], mounts=[], hostname="h", workdir=None, identity=identity, podnet_so=None
    )
    assert "--unshare-user" not in argv
    added = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--cap-add"]
    assert added == ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"]
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    command = argv[argv.index("--") + 1 :]
    assert command == [
        "setpriv",
        "--reuid=1000",
        "--regid=100",
        "--groups=100,5",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
        "id",
    ]
    assert argv[argv.index("/tmp") - 3 : argv.index("/tmp")] == ["--perms", "1777", "--tmpfs"]


def test_plain_root_runs_without_setpriv_and_keeps_only_added_capabilities():
    argv = bwrap_argv(
        command=["chown", "1000", "/data"],
        mounts=[],
        hostname="h",
        workdir=None,
        identity=Identity(capabilities=("CAP_CHOWN",)),
        podnet_so=None,
    )
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "--cap-add"] == ["CAP_CHOWN"]
    assert argv[argv.index("--") + 1 :] == ["chown", "1000", "/data"]
    assert Identity(uid=0, gid=0, groups=(100,), capabilities=("CAP_CHOWN",)).setpriv()[-2] == (
        "--bounding-set=-all,+chown"
    )


def test_runtime_paths_under_a_closed_directory_stay_reachable_for_other_users(tmp_path: Path):
    for name in ("root/.pyenv/py", "root/.ssh", "usr"):
        (tmp_path / name).mkdir(parents=True)
    tmp_path.chmod(0o755)  # as / is
    (tmp_path / "root").chmod(0o700)
    (tmp_path / "root/.profile").write_text("secret")
    operations = _operations(
        root_args([], host_root=tmp_path, reachable=["/root/.pyenv/py"], private=True)
    )
    assert ("--perms", "0711") in operations  # traversable, not listable, like a 0711 home
    assert operations[operations.index(("--perms", "0711")) + 1] == ("--dir", "/root")
    assert not any(
        op[-1] in ("/root/.ssh", "/root/.profile", "/root/.pyenv/py") for op in operations
    )
    assert ("--ro-bind", str(tmp_path / "usr"), "/usr") in operations
    as_root = _operations(root_args(["/root/.cache/x"], host_root=tmp_path))
    assert ("--perms", "0700") in as_root and (
        "--ro-bind",
        str(tmp_path / "root/.ssh"),
        "/root/.ssh",
    ) in as_root


def test_missing_mount_points_are_made_0755_not_bwraps_0700(tmp_path: Path):
    tmp_path.chmod(0o755)  # as / is
    (tmp_path / "usr").mkdir()
    argv = bwrap_argv(
        command=["true"],
        mounts=[Mount("/datasets/a", Path("/s/a"), read_only=True)],
        hostname="h",
        workdir=None,
        identity=Identity(uid=1000),
        podnet_so=Path("/cache/podnet.so"),
        host_root=tmp_path,
        runtime_paths=[Path("/tmp/checkout/.venv")],
    )
    for directory, mounted in [
        ("/datasets", "/datasets/a"),
        ("/tmp/checkout", "/tmp/checkout/.venv"),
        ("/.devstack", "/.devstack/podnet.so"),
    ]:
        made = argv.index(directory)
        assert argv[made - 3 : made] == ["--perms", "0755", "--dir"]
        assert made < argv.index(mounted)
    assert argv.count("/usr") == 1  # the host's /usr exists: only mirrored


@pytest.mark.parametrize(
    ("pod_context", "context", "expected"),
    [
        ({}, {}, Identity()),
        ({"runAsUser": 1000, "fsGroup": 100}, {}, Identity(uid=1000, groups=(100,))),
        (
            {"runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100, "supplementalGroups": [5, 100]},
            {"runAsUser": 1001},
            Identity(uid=1001, gid=100, groups=(100, 5)),
        ),
        (
            {"runAsUser": 1000},
            {"runAsUser": 0, "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "CAP_FOWNER"]}},
            Identity(capabilities=("CAP_CHOWN", "CAP_FOWNER")),
        ),
        ({}, {"capabilities": {"add": ["CHOWN"], "drop": ["CHOWN"]}}, Identity()),
        ({"runAsUser": 1000}, {"capabilities": {"add": ["CHOWN"]}}, Identity(uid=1000)),
    ],
    ids=[
        "image-root",
        "pod-user",
        "container-over-pod",
        "root-adds",
        "add-dropped",
        "non-root-add",
    ],
)
def test_container_identity(pod_context, context, expected):
    pod = {"spec": {"securityContext": pod_context}}
    assert container_identity(pod, {"name": "c", "securityContext": context}) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(A)-$(B)", "1-2"),
        ("$$(A)", "$(A)"),
        ("$(MISSING)", "$(MISSING)"),
        ("plain $A", "plain $A"),
    ],
)
def test_expand(value, expected):
    assert expand(value, {"A": "1", "B": "2"}) == expected


def _pv(capacity="1Gi", modes=("ReadWriteOnce",), storage_class="", labels=None, claimed=False):
    return {
        "metadata": {"name": "pv", "labels": labels or {}},
        "spec": {
            "capacity": {"storage": capacity},
            "accessModes": list(modes),
            "storageClassName": storage_class,
            **({"claimRef": {"uid": "x"}} if claimed else {}),
        },
        "status": {"phase": "Available"},
    }


def _claim(size="1Gi", modes=("ReadWriteOnce",), storage_class=None, selector=None):
    spec = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return {"metadata": {"name": "c"}, "spec": spec}


@pytest.mark.parametrize(
    ("volume", "claim", "fits"),
    [
        (_pv(), _claim(), True),
        (_pv(capacity="500Mi"), _claim(), False),
        (_pv(modes=("ReadOnlyMany",)), _claim(modes=("ReadWriteMany",)), False),
        (_pv(storage_class="fast"), _claim(), False),
        (_pv(storage_class="fast"), _claim(storage_class="fast"), True),
        (_pv(claimed=True), _claim(), False),
        (_pv(labels={"a": "b"}), _claim(selector={"a": "b"}), True),
        (_pv(), _claim(selector={"a": "b"}), False),
    ],
)
def test_volume_fits(volume, claim, fits):
    assert volume_fits(volume, claim) is fits


def test_kubelet_config_rejects_non_loopback_pod_network():
    with pytest.raises(ValueError, match="loopback"):
        KubeletConfig.from_dict({"nodes": [{"name": "n"}], "pod_network": "10.0.0.0/16"})
    with pytest.raises(ValueError, match="no nodes"):
        KubeletConfig.from_dict({})


def test_an_images_env_can_differ_by_its_name():
    config = KubeletConfig.from_dict(
        {"nodes": [{"name": "n"}], "image_env_by_pattern": {"*/broken:*": {"PYTHONHOME": "/x"}}}
    )
    assert config.env_of("example.org/broken:1")["PYTHONHOME"] == "/x"
    assert "PYTHONHOME" not in config.env_of("example.org/fine:1")
    assert config.env_of("example.org/broken:1")["HOME"] == "/home/jovyan"  # over every image's
