"""The whole test ground as one object: control plane + local kubelet, started and stopped together."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .cluster import Cluster
from .kubelet.logs import latest_log
from .processes import ManagedProcess

DATA_DIR = Path(__file__).with_name("data")
DEFAULT_NODES = DATA_DIR / "nodes.yaml"


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line contains ``text`` (pid, command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append((int(entry.name), cmdline.strip()))
    return found


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1]


def processes_of(state_dir: Path) -> list[tuple[int, str]]:
    """Live processes of the test ground in ``state_dir``: its servers and its pods' sandboxes,
    whose command lines name the directory or a path under it.

    A sandbox of another test ground on this machine may name the directory too, in the read-only
    mirror of the host (``--ro-bind D D``, from test grounds before the cache was hidden from
    pods): that does not make it this test ground's.
    """
    state = str(state_dir)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _cmdline(int(entry.name))
        if not argv:
            continue
        for index, arg in enumerate(argv):
            if not (arg == state or f"{state}/" in arg or arg.endswith(f"={state}")):
                continue
            mirrored = arg == state and index and argv[index - 1] in ("--ro-bind", state)
            if not mirrored:
                found.append((int(entry.name), " ".join(argv)))
                break
    return found


@dataclass
class TestGround:
    """etcd + kube-apiserver + the local kubelet, all state under ``state_dir``."""

    state_dir: Path
    nodes_file: Path = DEFAULT_NODES
    keep_data: bool = False  # keep the cluster's objects (and so the volumes' data) across runs
    cluster: Cluster = field(init=False)
    kubelet: ManagedProcess | None = field(default=None, init=False)

    __test__ = False  # not a pytest test class

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()
        self.cluster = Cluster(self.state_dir, keep_data=self.keep_data)

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.kubeconfig

    def start(self) -> TestGround:
        self.cluster.start()
        try:
            self.start_kubelet()
        except BaseException:
            self.stop()
            raise
        return self

    def start_kubelet(self) -> None:
        pki = self.cluster.pki
        self.kubelet = ManagedProcess(
            "local-kubelet",
            [
                sys.executable,
                "-m",
                "devstack.kubelet",
                "--kubeconfig",
                self.kubeconfig,
                "--context",
                "devstack-node",
                "--config",
                self.nodes_file,
                "--state-dir",
                self.state_dir,
                "--tls-cert-file",
                pki.kubelet_cert,
                "--tls-private-key-file",
                pki.kubelet_key,
                "--client-ca-file",
                pki.ca_cert,
            ],
            self.cluster.logs / "kubelet.log",
            cwd=Path(__file__).resolve().parent.parent,
        ).start()
        expected = {node["name"] for node in yaml.safe_load(self.nodes_file.read_text())["nodes"]}
        self.kubelet.wait_until(
            lambda: self._nodes_ready(expected), timeout=30, what="registered nodes"
        )

    def _nodes_ready(self, expected: set[str]) -> bool:
        nodes = self.cluster.get("/api/v1/nodes")["items"]
        ready = {
            n["metadata"]["name"]
            for n in nodes
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (n.get("status") or {}).get("conditions") or []
            )
        }
        return expected <= ready

    def stop(self) -> list[tuple[int, str]]:
        """Stop everything; return (and kill) any process of this test ground that outlived it."""
        if self.kubelet is not None:
            self.kubelet.stop(grace=20)
        self.cluster.stop()
        deadline = time.monotonic() + 5
        leftovers = processes_of(self.state_dir)
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.1)
            leftovers = processes_of(self.state_dir)
        for pid, _ in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return leftovers

    def pod_log(self, pod_uid: str, container: str) -> str:
        """The output of the container's newest instance."""
        path = latest_log(self.state_dir / "kubelet" / "pods" / pod_uid, container)
        try:
            return path.read_text(errors="replace") if path else ""
        except FileNotFoundError:
            return ""

    def host_dir(self, kind: str, *parts: str) -> Path:
        """Where a volume of ``kind`` (hostpath, nfs, csi) lives on the host."""
        return self.state_dir.joinpath("volumes", kind, *parts)
