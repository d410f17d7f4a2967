"""One container's process: a bwrap sandbox started, signalled, waited for and exec'd into."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..processes import die_with_parent
from .events import now
from .identity import Identity


class StartError(Exception):
    """The sandbox could not start the container (CreateContainerError / RunContainerError)."""


@dataclass
class ContainerProcess:
    """A running (or finished) container.

    ``child_pid`` is bwrap's reaper, PID 1 of the container's pid namespace; the container's main
    process is its child. Signals go to that main process, as with images whose PID 1 is an init
    (tini in Jupyter's docker-stacks) that forwards them.
    """

    name: str
    process: asyncio.subprocess.Process
    child_pid: int
    identity: Identity
    env: dict[str, str]
    log_path: Path
    command_pid: int | None = None
    pid_namespace: str | None = None
    started_at: str = field(default_factory=now)
    finished_at: str | None = None
    exit_code: int | None = None

    async def wait(self) -> int:
        code = await self.process.wait()
        if self.exit_code is None:
            self.exit_code = code if code >= 0 else 128 - code
            self.finished_at = now()
        return self.exit_code

    def main_pid(self) -> int | None:
        """The host pid of the container's command (the reaper's first child)."""
        if self.command_pid is not None:
            return self.command_pid
        try:
            children = (
                Path(f"/proc/{self.child_pid}/task/{self.child_pid}/children").read_text().split()
            )
        except OSError:
            return None
        return int(children[0]) if children else None

    def signal(self, sig: signal.Signals) -> None:
        pid = self.main_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill_all(self) -> None:
        """SIGKILL the sandbox (bwrap's process group) and everything in its pid namespace.

        The container's processes run in their own session, out of bwrap's group; killing the
        namespace's PID 1 (the reaper) makes the kernel kill them all.
        """
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.pid_namespace is not None and _pid_namespace(self.child_pid) == self.pid_namespace:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child_pid, signal.SIGKILL)

    async def stop(self, grace: float) -> int:
        """SIGTERM the main process; SIGKILL everything once ``grace`` seconds have passed."""
        if self.process.returncode is None:
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.wait()), timeout=max(grace, 0.0))
            except TimeoutError:
                self.kill_all()
        code = await self.wait()
        self.kill_all()
        await self._until_the_sandbox_is_gone()
        return code

    async def _until_the_sandbox_is_gone(self, timeout: float = 2.0) -> None:
        """The sandbox's processes die asynchronously after SIGKILL (the pid namespace is torn
        down after bwrap exits); a kubelet reports a container stopped once they are gone."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if not _live_members(self.process.pid, self.pid_namespace):
                return
            await asyncio.sleep(0.02)

    async def exec(self, command: Sequence[str], timeout: float) -> tuple[int, str]:
        """Run ``command`` inside the container: its mounts, pid namespace, env, uid, groups and
        capabilities (no_new_privs, as bwrap sets it)."""
        target = str(self.main_pid() or self.child_pid)
        enter = ["nsenter", "-t", target, "-m", "-p", "-u", "-i", "-r", "-w", "--"]
        enter += [*self.identity.setpriv(no_new_privs=True), *command]
        process = await asyncio.create_subprocess_exec(
            *enter,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            return 137, f"command timed out after {timeout:.0f}s"
        return process.returncode or 0, output.decode(errors="replace")[-2000:]


async def _read_info(fd: int, timeout: float) -> dict[str, int] | None:
    """bwrap's --info-fd JSON (None when bwrap exits before writing it)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    data = b""
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    return None
                data += chunk
                with contextlib.suppress(json.JSONDecodeError):
                    return json.loads(data)
    finally:
        transport.close()


async def launch(
    name: str,
    argv_with_info_fd: Sequence[str],
    info_fd_placeholder: str,
    env: Mapping[str, str],
    identity: Identity,
    log_path: Path,
) -> ContainerProcess:
    """Start bwrap; ``info_fd_placeholder`` in the argv is replaced by the info pipe's fd number."""
    read_end, write_end = os.pipe()
    argv = [str(write_end) if arg == info_fd_placeholder else arg for arg in argv_with_info_fd]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_path, "ab") as log:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(write_end,),
                start_new_session=True,
                preexec_fn=die_with_parent,  # only prctl before exec
            )
    finally:
        os.close(write_end)
    try:
        info = await _read_info(read_end, timeout=30)
        if info is None or "child-pid" not in info:
            await process.wait()
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise StartError("; ".join(tail) or f"sandbox exited with {process.returncode}")
        container = ContainerProcess(
            name=name,
            process=process,
            child_pid=info["child-pid"],
            identity=identity,
            env=dict(env),
            log_path=log_path,
            pid_namespace=_pid_namespace(info["child-pid"]),
        )
        # The reaper forks the command right after reporting; hooks must enter the command's view.
        for _ in range(400):
            container.command_pid = container.main_pid()
            if container.command_pid is not None or process.returncode is not None:
                break
            await asyncio.sleep(0.005)
    except BaseException:
        # Cancelled (the pod deleted) while starting: nobody will stop this sandbox but us; its
        # processes die with bwrap (--die-with-parent).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        raise
    return container


def _pid_namespace(pid: int) -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/ns/pid")
    return None


def _live_members(group: int, pid_namespace: str | None) -> bool:
    """Whether a process of process group ``group`` or of ``pid_namespace`` is still alive
    (zombies do not count)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] in "ZX":
            continue
        if int(fields[2]) == group:
            return True
        if pid_namespace is not None and _pid_namespace(int(proc.name)) == pid_namespace:
            return True
    return False
