"""Pure parts of the test ground: scheduling decisions, the sandbox's root, env expansion, PV matching."""

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from devstack.ground import processes_of
from devstack.kubelet.config import KubeletConfig, NodeSpec, Taint
from devstack.kubelet.controllers import volume_fits
from devstack.kubelet.environment import expand
from devstack.kubelet.logs import BLOCK, LogError, container_id, read_log, select_instance
from devstack.kubelet.restarts import BackOff, go_duration, should_restart
from devstack.kubelet.sandbox import Mount, bwrap_argv, root_args
from devstack.kubelet.scheduler import pod_requests, schedule, tolerates, volume_blocker
from devstack.kubelet.status import pod_phase

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
    arity = {"--ro-bind": 2, "--bind": 2, "--symlink": 2, "--dir": 1, "--tmpfs": 1}
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
        run_as=(1000, 100),
        podnet_so=None,
    )
    home, work = argv.index("/home/jovyan"), argv.index("/home/jovyan/work")
    assert home < work
    assert argv[argv.index("/s/a") - 1] == "--ro-bind"
    assert argv[argv.index("--uid") + 1] == "1000"
    assert argv[-2:] == ["--", "jupyterhub-singleuser"]
    assert "--setenv" not in argv


def test_interpreter_under_tmp_stays_visible_over_the_private_tmp():
    argv = bwrap_argv(
        command=["python3"],
        mounts=[],
        hostname="h",
        workdir=None,
        run_as=None,
        podnet_so=None,
        runtime_paths=[Path("/tmp/checkout/.venv"), Path("/usr")],
    )
    private_tmp = argv.index("/tmp")
    assert argv[argv.index("/tmp/checkout/.venv") - 1] == "--ro-bind"
    assert argv.index("/tmp/checkout/.venv") > private_tmp  # bound on top of the fresh tmpfs
    assert argv.count("/usr") == 2  # once from the host mirror only


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


@pytest.mark.parametrize(
    ("text", "tail", "limit", "expected"),
    [
        (b"a\nb\nc\n", 2, None, b"b\nc\n"),
        (b"a\nb\nc", 2, None, b"b\nc"),  # an unterminated last line counts
        (b"a\nb\n", 5, None, b"a\nb\n"),
        (b"a\nb\n", 0, None, b""),
        (b"a\nb\nc\n", None, 3, b"a\nb"),
        (b"a\nb\nc\n", 2, 3, b"b\nc"),  # limitBytes cuts what tailLines selected
        (b"", 3, None, b""),
    ],
)
def test_read_log_tail_and_limit(tmp_path, text, tail, limit, expected):
    path = tmp_path / "0.log"
    path.write_bytes(text)
    assert read_log(path, tail, limit) == expected


def test_read_log_tail_across_blocks(tmp_path):
    path = tmp_path / "0.log"
    lines = [f"line {i}\n".encode() for i in range(3 * BLOCK // 8)]
    path.write_bytes(b"".join(lines))
    assert read_log(path, 3) == b"".join(lines[-3:])
    assert read_log(path, len(lines) - 1) == b"".join(lines[1:])
    assert read_log(tmp_path / "missing.log", 3) == b""


def _status(state: dict, last: dict | None = None, instance: int = 0) -> dict:
    status = {"state": state, "containerID": container_id("u", "c", instance)}
    if last is not None:
        status["lastState"] = {"terminated": last}
    return status


def _ended(instance: int) -> dict:
    return {"exitCode": 1, "containerID": container_id("u", "c", instance)}


@pytest.mark.parametrize(
    ("status", "previous", "expected"),
    [
        (_status({"running": {}}, instance=2), False, 2),
        (_status({"running": {}}, _ended(1), instance=2), True, 1),
        (_status({"terminated": _ended(3)}, _ended(2)), False, 3),
        (_status({"terminated": _ended(3)}, _ended(2)), True, 2),
        (_status({"waiting": {"reason": "CrashLoopBackOff"}}, _ended(4)), False, 4),
        (_status({"waiting": {"reason": "CrashLoopBackOff"}}, _ended(4)), True, 4),
        (_status({"running": {}}), True, 'previous terminated container "c" in pod "p" not found'),
        (
            _status({"waiting": {"reason": "ContainerCreating"}}),
            False,
            'container "c" in pod "p" is waiting to start: ContainerCreating',
        ),
    ],
)
def test_which_instance_a_log_request_reads(status, previous, expected):
    if isinstance(expected, int):
        assert select_instance(status, "c", "p", previous) == expected
    else:
        with pytest.raises(LogError) as raised:
            select_instance(status, "c", "p", previous)
        assert (raised.value.status, raised.value.message) == (400, expected)


@pytest.mark.parametrize(
    ("policy", "code", "init", "restart"),
    [
        ("Always", 0, False, True),
        ("Always", 1, False, True),
        ("OnFailure", 0, False, False),
        ("OnFailure", 2, False, True),
        ("Never", 2, False, False),
        ("Always", 0, True, False),  # a finished init container lets the pod go on
        ("Always", 1, True, True),
        ("Never", 1, True, False),
    ],
)
def test_should_restart(policy, code, init, restart):
    assert should_restart(policy, code, init) is restart


def test_crash_loop_back_off_doubles_up_to_the_cap_and_resets_after_a_long_run():
    backoff = BackOff(initial=1.0, cap=4.0)
    assert backoff.wait("c", finished=0.0) == 0.0  # the first exit restarts at once
    backoff.restarting("c", now=0.0)
    waits = []
    clock = 0.0
    for _ in range(4):
        clock += 0.1  # the container crashes right away
        waits.append(backoff.wait("c", finished=clock))
        clock += waits[-1]
        backoff.restarting("c", now=clock)
    assert waits == [1.0, 2.0, 4.0, 4.0]
    assert backoff.wait("c", finished=clock + 8.5) == 0.0  # ran longer than twice the cap
    backoff.restarting("c", now=clock + 8.5)
    assert backoff.wait("c", finished=clock + 9.0) == 1.0
    assert backoff.wait("other", finished=clock) == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(10, "10s"), (0.5, "500ms"), (80, "1m20s"), (300, "5m0s"), (1.5, "1.5s"), (3725, "1h2m5s")],
)
def test_go_duration(seconds, text):
    assert go_duration(seconds) == text


def _state(kind: str, code: int = 0, last: int | None = None) -> dict:
    status: dict = {"state": {kind: {"exitCode": code} if kind == "terminated" else {}}}
    if last is not None:
        status["lastState"] = {"terminated": {"exitCode": last}}
    return status


@pytest.mark.parametrize(
    ("policy", "main", "init", "phase"),
    [
        ("OnFailure", _state("waiting"), None, "Pending"),
        ("OnFailure", _state("running"), None, "Running"),
        ("OnFailure", _state("waiting", last=1), None, "Running"),  # CrashLoopBackOff
        ("OnFailure", _state("terminated", 1), None, "Running"),  # about to restart
        ("OnFailure", _state("terminated", 0), None, "Succeeded"),
        ("Always", _state("terminated", 0), None, "Running"),
        ("Always", _state("waiting", last=0), None, "Running"),
        ("Never", _state("terminated", 3), None, "Failed"),
        ("Never", _state("terminated", 0), None, "Succeeded"),
        ("Never", _state("waiting"), _state("terminated", 1), "Failed"),
        ("OnFailure", _state("waiting"), _state("waiting", last=1), "Pending"),  # init crash loop
        ("OnFailure", _state("waiting"), _state("running"), "Pending"),
    ],
)
def test_pod_phase_as_kubelet_reports_it(policy, main, init, phase):
    spec: dict = {"restartPolicy": policy, "containers": [{"name": "main"}]}
    statuses = {"main": main}
    if init is not None:
        spec["initContainers"] = [{"name": "init"}]
        statuses["init"] = init
    assert pod_phase(spec, statuses) == phase


def _running(argv: list[str]) -> subprocess.Popen:
    """A process with ``argv`` on its command line, once the kernel shows it there (Popen may
    return while exec is still setting it up)."""
    command = [sys.executable, "-c", "import time; time.sleep(60)", *argv]
    process = subprocess.Popen(command)
    expected = "\0".join(command).encode() + b"\0"
    for _ in range(10_000):
        if Path(f"/proc/{process.pid}/cmdline").read_bytes() == expected:
            return process
    process.kill()
    raise AssertionError(f"{command} never showed in /proc")


def test_processes_of_a_test_ground_leave_out_other_grounds_mirrors(tmp_path):
    state = tmp_path / "run-x"
    argvs = {
        "mirror": ["--ro-bind", str(state), str(state)],  # another ground's view of the host
        "volume": ["--bind", f"{state}/volumes/v", "/data"],
        "hidden": ["--tmpfs", str(state)],
        "other": ["--tmpfs", f"{state}-other", f"--x={state}-other/y"],
        "option": [f"--state={state}"],
    }
    processes = {name: _running(argv) for name, argv in argvs.items()}
    try:
        found = {pid for pid, _ in processes_of(state)}
        assert found == {processes[name].pid for name in ("volume", "hidden", "option")}
    finally:
        for process in processes.values():
            process.kill()
            process.wait()
