"""Pure parts of the local kubelet's runtime: logs, restarts and phase, identities, volume
ownership, which processes are a test ground's."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.ground import processes_of
from devstack.kubelet.logs import BLOCK, LogError, container_id, read_log, select_instance
from devstack.kubelet.restarts import BackOff, go_duration, should_restart
from devstack.kubelet.status import pod_phase
from devstack.kubelet.volumes import set_volume_ownership


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


def _ownership(path: Path) -> tuple[int, str]:
    info = path.lstat()
    return info.st_gid, stat.filemode(info.st_mode)


def test_fs_group_ownership_as_kubelet_sets_it(tmp_path: Path):
    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    volume.chmod(0o755)
    (volume / "sub").chmod(0o700)
    (volume / "file").write_text("x")
    (volume / "file").chmod(0o600)
    (volume / "link").symlink_to("file")
    set_volume_ownership(volume, 100, read_only=False)
    assert _ownership(volume) == (100, "drwxrwsr-x")
    assert _ownership(volume / "sub") == (100, "drwxrws---")
    assert _ownership(volume / "file") == (100, "-rw-rw----")
    assert _ownership(volume / "link")[0] == 100  # the link itself, its target's mode untouched
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("k")
    (secret / "key").chmod(0o400)
    set_volume_ownership(secret, 100, read_only=True)
    assert _ownership(secret / "key") == (100, "-r--r-----")


def test_fs_group_change_policy_on_root_mismatch_skips_a_volume_whose_root_is_right(tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    set_volume_ownership(volume, 100, read_only=False)
    (volume / "later").write_text("x")
    os.chown(volume / "later", -1, 0)  # written by someone else since
    set_volume_ownership(volume, 100, read_only=False, policy="OnRootMismatch")
    assert _ownership(volume / "later")[0] == 0
    set_volume_ownership(volume, 100, read_only=False, policy="Always")
    assert _ownership(volume / "later")[0] == 100
    set_volume_ownership(volume, 200, read_only=False, policy="OnRootMismatch")
    assert _ownership(volume / "later")[0] == 200  # the root's group differs: everything changes
    set_volume_ownership(volume, None, read_only=False)
    assert _ownership(volume)[0] == 200
