"""The life of one pod on a local node: volumes, init containers, containers, hooks, status, end."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import shutil
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from ..kubeapi import UNREACHABLE, ApiError, KubeAPI, api_unavailable
from .config import KubeletConfig
from .containers import ContainerProcess, StartError, launch
from .environment import ContainerConfigError, command_line, container_env
from .events import EventRecorder, now
from .identity import container_identity, run_as_non_root_error
from .launching import INFO_FD, Sandbox
from .logs import container_id, log_path, prune
from .podnet import PodIPPool
from .restarts import BackOff, go_duration, restart_policy, should_restart
from .status import TERMINAL, pod_phase, pod_status, waiting_status
from .volumes import MountError, VolumeLayout, volume_dirs

log = logging.getLogger("devstack.kubelet.pods")
RETRY_SECONDS = 2.0
HOOK_TIMEOUT = 120.0


class PodFailed(Exception):
    """The pod ends in phase Failed (an init container or hook failed)."""


async def _all(coroutines: Iterable[Awaitable[Any]]) -> None:
    """Await every coroutine; the first to raise cancels the others and its error is raised."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _exec_command(hook: dict[str, Any] | None) -> list[str] | None:
    return ((hook or {}).get("exec") or {}).get("command") or None


class PodWorker:
    """Runs one pod's containers and keeps its status up to date in the API server."""

    def __init__(
        self,
        pod: dict[str, Any],
        *,
        api: KubeAPI,
        config: KubeletConfig,
        layout: VolumeLayout,
        ips: PodIPPool,
        recorder: EventRecorder,
        podnet_so: Path | None,
        bwrap: str,
        on_finished: Callable[[PodWorker], Awaitable[None]],
    ) -> None:
        self.pod = pod
        self.api, self.config, self.layout, self.ips = api, config, layout, ips
        self.recorder, self.podnet_so, self.bwrap = recorder, podnet_so, bwrap
        self.on_finished = on_finished
        meta = pod["metadata"]
        self.uid, self.name, self.namespace = meta["uid"], meta["name"], meta["namespace"]
        self.pod_ip: str | None = None
        self.failed = False  # ended Failed whatever the containers' states (PodFailed)
        self.start_time = now()
        self.statuses: dict[str, dict[str, Any]] = {}
        self.running: dict[str, ContainerProcess] = {}
        self.ready: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._status_retry: asyncio.Task[None] | None = None
        self._stopping = False
        self._termination: asyncio.Future[None] | None = None
        self._cleaned = False
        self.backoff = BackOff(config.backoff_initial_seconds, config.backoff_max_seconds)
        self.sandbox = Sandbox(
            config, layout.state_dir, layout.pod_dir(self.uid), self.name[:63], bwrap, podnet_so
        )
        for container in pod["spec"].get("initContainers") or ():
            self.statuses[container["name"]] = waiting_status(container, "PodInitializing")
        for container in pod["spec"]["containers"]:
            self.statuses[container["name"]] = waiting_status(container, "ContainerCreating")

    @property
    def api_path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._lifecycle(), name=f"pod {self.namespace}/{self.name}"
        )

    # -- status ---------------------------------------------------------------------------------

    @property
    def phase(self) -> str:
        return "Failed" if self.failed else pod_phase(self.pod["spec"], self.statuses)

    def _set_running(self, container: dict[str, Any], process: ContainerProcess) -> None:
        status = self.statuses[container["name"]]
        status.update(
            imageID=f"devstack://{container.get('image', '')}",
            containerID=container_id(self.uid, container["name"], status["restartCount"]),
            started=True,
            state={"running": {"startedAt": process.started_at}},
        )

    def _set_terminated(
        self, name: str, process: ContainerProcess, reason: str | None = None
    ) -> None:
        code = process.exit_code if process.exit_code is not None else 137
        status = self.statuses[name]
        status.update(
            ready=False,
            started=False,
            state={
                "terminated": {
                    "exitCode": code,
                    "reason": reason or ("Completed" if code == 0 else "Error"),
                    "startedAt": process.started_at,
                    "finishedAt": process.finished_at or now(),
                    "containerID": container_id(self.uid, name, status["restartCount"]),
                }
            },
        )
        self.ready.discard(name)

    def status(self) -> dict[str, Any]:
        return pod_status(
            self.pod["spec"], self.statuses, self.ready, self.phase, self.start_time, self.pod_ip
        )

    async def publish(self) -> None:
        """Write the pod's status; while the API server is unavailable, keep retrying in the
        background (the newest status wins), as a kubelet's status manager does."""
        if self._stopping and self.phase not in TERMINAL:
            return
        if self._status_retry is not None and not self._status_retry.done():
            return  # the retry writes the status as it is then
        if not await self._write_status():
            self._status_retry = asyncio.create_task(self._write_status_until_written())

    async def _write_status(self) -> bool:
        """True once written, or not worth retrying (the pod is gone, the status refused)."""
        try:
            await self.api.patch(f"{self.api_path}/status", {"status": self.status()})
        except (ApiError, *UNREACHABLE) as error:
            if api_unavailable(error):
                return False
            if error.status != 404:
                log.warning("status of %s/%s not written: %s", self.namespace, self.name, error)
        return True

    async def _write_status_until_written(self) -> None:
        log.warning("status of %s/%s waits for the API server", self.namespace, self.name)
        while True:
            await asyncio.sleep(RETRY_SECONDS / 2)
            if await self._write_status():
                return

    async def event(
        self, kind: str, reason: str, message: str, container: str | None = None, init: bool = False
    ) -> None:
        field_path = None
        if container:
            field_path = f"spec.{'initContainers' if init else 'containers'}{{{container}}}"
        await self.recorder.record(self.pod, kind, reason, message, field_path)

    # -- lifecycle --------------------------------------------------------------------------------

    async def _lifecycle(self) -> None:
        try:
            spec = self.pod["spec"]
            ports = [p["containerPort"] for c in spec["containers"] for p in c.get("ports") or ()]
            self.pod_ip = self.ips.allocate(ports)
            dirs = await self._retry("FailedMount", self._volumes)
            for container in spec.get("initContainers") or ():
                await self._start(container, dirs, init=True)
                await self.publish()
                code = await self._supervise(container, dirs, init=True)
                if code != 0:
                    raise PodFailed(f"init container {container['name']} exited with {code}")
            for container in spec["containers"]:
                process = await self._start(container, dirs, init=False)
                await self._post_start(container, process)
                self.ready.add(container["name"])
            await self.publish()
            await _all(self._supervise(c, dirs, init=False) for c in spec["containers"])
        except PodFailed as failure:
            log.info("pod %s/%s failed: %s", self.namespace, self.name, failure)
            await self._end_processes(grace=2.0)
            self.failed = True
            await self.publish()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s/%s: unexpected error", self.namespace, self.name)
            await self._end_processes(grace=2.0)
            self.failed = True
            await self.publish()
        finally:
            if self.phase in TERMINAL and not self._stopping:
                self.ips.release(self.pod_ip)
                await self.on_finished(self)

    async def _retry(self, reason: str, step: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``step`` until it succeeds, reporting each new failure as a Warning event."""
        while True:
            try:
                return await step()
            except (MountError, ContainerConfigError) as error:
                await self.event("Warning", reason, str(error))
                await asyncio.sleep(RETRY_SECONDS)
            except Exception as error:
                if not api_unavailable(error):
                    raise
                log.warning(
                    "pod %s/%s waits for the API server: %s", self.namespace, self.name, error
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def _volumes(self) -> dict[str, tuple[Path, bool]]:
        try:
            return await volume_dirs(self.api, self.layout, self.pod)
        except MountError as error:
            raise MountError(f"Unable to attach or mount volumes: {error}") from error

    async def _pull(self, container: dict[str, Any], init: bool) -> None:
        image = container.get("image", "")
        name = container["name"]
        if any(fnmatch.fnmatch(image, pattern) for pattern in self.config.unpullable_images):
            await self.event("Normal", "Pulling", f'Pulling image "{image}"', name, init)
            message = f'Failed to pull image "{image}": rpc error: code = NotFound desc = {image}: not found'
            await self.event("Warning", "Failed", message, name, init)
            await self.event("Warning", "Failed", "Error: ErrImagePull", name, init)
            self.statuses[name]["state"] = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{image}"',
                }
            }
            await self.publish()
            raise ContainerConfigError(f'Back-off pulling image "{image}"')
        await self.event(
            "Normal", "Pulled", f'Container image "{image}" already present on machine', name, init
        )

    async def _start(
        self, container: dict[str, Any], dirs: dict[str, tuple[Path, bool]], init: bool
    ) -> ContainerProcess:
        name = container["name"]
        identity = container_identity(self.pod, container)

        async def prepare() -> tuple[list[str], dict[str, str]]:
            await self._pull(container, init)
            assert self.pod_ip is not None
            try:
                env = await container_env(
                    self.api,
                    self.pod,
                    container,
                    self.pod_ip,
                    {"PATH": self.config.container_path, **self.config.image_env},
                )
                refusal = run_as_non_root_error(self.pod, container, identity)
                if refusal:
                    raise ContainerConfigError(refusal)
                return command_line(container, env), env
            except ContainerConfigError as error:
                self.statuses[name]["state"] = {
                    "waiting": {"reason": "CreateContainerConfigError", "message": str(error)}
                }
                await self.publish()
                raise

        argv, env = await self._retry("Failed", prepare)
        try:
            sandbox = self.sandbox.argv(container, dirs, identity, argv)
        except MountError as error:
            raise PodFailed(str(error)) from error
        env["DEVSTACK_POD_IP"] = self.pod_ip or ""
        instance = self.statuses[name]["restartCount"]
        pod_dir = self.layout.pod_dir(self.uid)
        prune(pod_dir, name, instance)
        try:
            process = await launch(
                name, sandbox, INFO_FD, env, identity, log_path(pod_dir, name, instance)
            )
        except StartError as error:
            await self.event("Warning", "Failed", f"Error: {error}", name, init)
            raise PodFailed(f"container {name} did not start: {error}") from error
        self.running[name] = process
        self._set_running(container, process)
        await self.event("Normal", "Created", f"Created container {name}", name, init)
        await self.event("Normal", "Started", f"Started container {name}", name, init)
        return process

    async def _post_start(self, container: dict[str, Any], process: ContainerProcess) -> None:
        command = _exec_command((container.get("lifecycle") or {}).get("postStart"))
        if not command:
            return
        code, output = await process.exec(command, HOOK_TIMEOUT)
        if code != 0:
            message = (
                f'Exec lifecycle hook ({command}) for Container "{container["name"]}" in Pod '
                f'"{self.name}_{self.namespace}({self.uid})" failed - error: command exited '
                f"with {code}, message: {output.strip()!r}"
            )
            await self.event("Warning", "FailedPostStartHook", message, container["name"])
            raise PodFailed(f"postStart hook of {container['name']} failed")

    async def _supervise(
        self, container: dict[str, Any], dirs: dict[str, tuple[Path, bool]], init: bool
    ) -> int:
        """Wait for the container to exit and restart it as the restartPolicy says, after the
        crash-loop back-off; return its exit code once it has ended for good."""
        name = container["name"]
        policy = restart_policy(self.pod["spec"])
        loop = asyncio.get_running_loop()
        while True:
            process = self.running[name]
            code = await process.wait()
            finished = loop.time()
            self.running.pop(name, None)
            self._set_terminated(name, process)
            await self.publish()
            if not should_restart(policy, code, init):
                return code
            status = self.statuses[name]
            delay = self.backoff.wait(name, finished)
            if delay > 0:
                status["lastState"] = {"terminated": status["state"]["terminated"]}
                pod = f"{self.name}_{self.namespace}({self.uid})"
                message = (
                    f"back-off {go_duration(delay)} restarting failed container={name} pod={pod}"
                )
                status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
                await self.event(
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {name} in pod {pod}",
                    name,
                    init,
                )
                await self.publish()
                await asyncio.sleep(max(delay - (loop.time() - finished), 0.0))
            self.backoff.restarting(name, loop.time())
            if "terminated" in status["state"]:
                status["lastState"] = {"terminated": status["state"]["terminated"]}
            status["restartCount"] += 1
            process = await self._start(container, dirs, init)
            if not init:
                await self._post_start(container, process)
                self.ready.add(name)
            await self.publish()

    # -- termination ------------------------------------------------------------------------------

    async def terminate(self, grace: float) -> None:
        """Stop the pod as kubelet does on deletion: preStop hooks, SIGTERM, SIGKILL after ``grace``."""
        if self._termination is None:
            self._termination = asyncio.ensure_future(self._terminate(grace))
        await asyncio.shield(self._termination)

    async def _terminate(self, grace: float) -> None:
        self._stopping = True
        for task in (self._task, self._status_retry):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._end_processes(grace)
        self.ips.release(self.pod_ip)
        self.cleanup()

    async def _end_processes(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        containers = {c["name"]: c for c in self.pod["spec"]["containers"]}
        for name, process in list(self.running.items()):
            if process.process.returncode is None:
                await self.event("Normal", "Killing", f"Stopping container {name}", name)
                command = _exec_command(
                    ((containers.get(name) or {}).get("lifecycle") or {}).get("preStop")
                )
                if command:
                    await process.exec(command, max(deadline - loop.time(), 0.1))
        await asyncio.gather(
            *(p.stop(max(deadline - loop.time(), 0.0)) for p in self.running.values())
        )
        for name, process in list(self.running.items()):
            self._set_terminated(name, process)
        self.running.clear()

    def cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        shutil.rmtree(self.layout.pod_dir(self.uid), ignore_errors=True)
        shutil.rmtree(self.layout.memory_dir / self.uid, ignore_errors=True)
