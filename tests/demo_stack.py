"""``python -m devstack demo`` as a test fixture: the whole demo stack in a subprocess, on free ports,
stopped with SIGTERM as a person stops it with Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / ".demo" / "screenshots"
READY_LINE = "primehub_spawner demo is running."


@dataclass
class DemoStack:
    """The demo's processes, their ports and state directory."""

    state_dir: Path
    log_file: Path
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['hub']}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def start(self, timeout: float = 240) -> DemoStack:
        # A second run on the same state keeps the ports: the realm (kept too) knows the hub's URL.
        self.ports = self.ports or {
            name: free_port()
            for name in ("hub", "keycloak", "keycloak-management", "hub-internal", "proxy-api")
        }
        command = [sys.executable, "-m", "devstack", "demo", "--state-dir", str(self.state_dir)]
        for name, port in self.ports.items():
            command += [f"--{name}-port", str(port)]
        with self.log_file.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the demo did not come up:\n{self.log()[-4000:]}")
            time.sleep(0.5)
        return self

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM, as Ctrl-C; the demo's exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    stack = DemoStack(directory / "state", directory / "demo.log").start()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield stack
    stack.stop()
