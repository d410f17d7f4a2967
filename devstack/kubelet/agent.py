"""The local kubelet process: fake nodes, a scheduler, controllers and the pods bound to its nodes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from ..kubeapi import UNREACHABLE, ApiError, KubeAPI, informer
from .config import KubeletConfig, NodeSpec
from .controllers import NamespaceFinalizer, VolumeBinder
from .events import EventRecorder, now
from .logs import LogError, log_path, select_instance
from .podnet import PodIPPool, shim_library
from .pods import PodWorker
from .scheduler import Resources, add_usage, schedule, volume_blocker
from .server import KubeletServer, ServingCerts
from .status import TERMINAL
from .volumes import VolumeLayout

log = logging.getLogger("devstack.kubelet")
SCHEDULE_RETRY = 5.0
DEFAULT_GRACE = 30


def _grace(pod: dict[str, Any]) -> float:
    meta, spec = pod["metadata"], pod["spec"]
    value = meta.get("deletionGracePeriodSeconds")
    if value is None:
        value = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE)
    return float(value)


class LocalKubelet:
    """Everything a one-machine cluster needs besides the API server, in one asyncio process."""

    def __init__(
        self,
        config: KubeletConfig,
        api: KubeAPI,
        state_dir: Path,
        certs: ServingCerts | None = None,
        port: int = 0,
    ) -> None:
        self.config = config
        self.api = api
        self.nodes: dict[str, NodeSpec] = {node.name: node for node in config.nodes}
        digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
        self.layout = VolumeLayout(
            state_dir=state_dir.resolve(), memory_dir=Path("/dev/shm") / f"devstack-{digest}"
        )
        self.ips = PodIPPool(config.pod_network)
        self.kubelet_events = EventRecorder(api, "kubelet")
        self.scheduler_events = EventRecorder(api, "default-scheduler")
        self.binder = VolumeBinder(api, self.layout)
        self.finalizer = NamespaceFinalizer(api)
        self.podnet_so = shim_library()
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise FileNotFoundError("bwrap is not installed (apt install bubblewrap)")
        self.bwrap = bwrap
        self.pods: dict[str, dict[str, Any]] = {}
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        self.workers: dict[str, PodWorker] = {}
        self._schedule_wakeup = asyncio.Event()
        self._last_failure: dict[str, tuple[str, float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.server = KubeletServer(self.container_log, certs, port=port) if certs else None
        self.port = 0  # the kubelet endpoint's, once serving

    def _in_background(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- nodes ------------------------------------------------------------------------------------

    async def register_nodes(self) -> None:
        for node in self.nodes.values():
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": node.name, "labels": node.all_labels},
                "spec": {
                    "taints": [t.to_api() for t in node.taints],
                    "unschedulable": node.unschedulable,
                },
            }
            try:
                await self.api.post("/api/v1/nodes", body)
            except ApiError as error:
                if error.status != 409:
                    raise
                await self.api.patch(
                    f"/api/v1/nodes/{node.name}",
                    {"metadata": {"labels": node.all_labels}, "spec": body["spec"]},
                )
            capacity = {
                name: str(value)
                for name, value in {
                    "cpu": "4",
                    "memory": "8Gi",
                    "pods": "110",
                    **node.capacity,
                }.items()
            }
            await self.api.patch(
                f"/api/v1/nodes/{node.name}/status",
                {
                    "status": {
                        "capacity": capacity,
                        "allocatable": capacity,
                        "addresses": [
                            {"type": "InternalIP", "address": "127.0.0.1"},
                            {"type": "Hostname", "address": node.name},
                        ],
                        "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                        "conditions": [
                            {
                                "type": "Ready",
                                "status": "True",
                                "reason": "KubeletReady",
                                "message": "devstack local kubelet is posting ready status",
                                "lastHeartbeatTime": now(),
                                "lastTransitionTime": now(),
                            }
                        ],
                        "nodeInfo": {
                            "kubeletVersion": "v1.20.2-devstack",
                            "kubeProxyVersion": "",
                            "operatingSystem": "linux",
                            "architecture": "amd64",
                            "containerRuntimeVersion": "bwrap://0.8",
                            "osImage": "devstack",
                            "kernelVersion": "",
                            "machineID": "",
                            "systemUUID": "",
                            "bootID": "",
                        },
                    }
                },
            )

    # -- logs -------------------------------------------------------------------------------------

    def container_log(self, namespace: str, name: str, container: str, previous: bool) -> Path:
        """The log file a ``/containerLogs`` request reads; a pod of this kubelet's nodes that
        still exists (a finished pod's logs stay until it is deleted)."""
        pods = [
            p
            for p in self.pods.values()
            if p["metadata"]["namespace"] == namespace
            and p["metadata"]["name"] == name
            and p["spec"].get("nodeName") in self.nodes
        ]
        if not pods:
            raise LogError(404, f'pod "{name}" does not exist')
        pod = max(pods, key=lambda p: p["metadata"]["uid"] in self.workers)
        uid = pod["metadata"]["uid"]
        spec = pod["spec"]
        declared = [*spec["containers"], *(spec.get("initContainers") or ())]
        if not any(c["name"] == container for c in declared):
            raise LogError(404, f'container "{container}" not found in pod "{name}"')
        worker = self.workers.get(uid)
        if worker is not None:
            status = worker.statuses.get(container) or {}
        else:
            status = pod.get("status") or {}
            listed = [
                *(status.get("containerStatuses") or ()),
                *(status.get("initContainerStatuses") or ()),
            ]
            status = next((s for s in listed if s.get("name") == container), {})
        instance = select_instance(status, container, name, previous)
        return log_path(self.layout.pod_dir(uid), container, instance)

    # -- watches ----------------------------------------------------------------------------------

    async def on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if kind == "DELETED":
            self.pods.pop(uid, None)
            self._last_failure.pop(uid, None)
            worker = self.workers.pop(uid, None)
            if worker is not None:  # force-deleted while running: stop it now
                self._in_background(worker.terminate(min(_grace(pod), 5.0)))
            self.kubelet_events.forget(uid)
            self.scheduler_events.forget(uid)
            self._schedule_wakeup.set()
            return
        self.pods[uid] = pod
        node_name = pod["spec"].get("nodeName")
        if not node_name:
            self._schedule_wakeup.set()
            return
        if node_name not in self.nodes:
            return
        if pod["metadata"].get("deletionTimestamp"):
            worker = self.workers.get(uid)
            if worker is None:
                await self._finish_deletion(pod)
            else:
                self._in_background(self._terminate_and_delete(worker, pod))
            return
        if uid not in self.workers and (pod.get("status") or {}).get("phase") not in TERMINAL:
            worker = PodWorker(
                pod,
                api=self.api,
                config=self.config,
                layout=self.layout,
                ips=self.ips,
                recorder=self.kubelet_events,
                podnet_so=self.podnet_so,
                bwrap=self.bwrap,
                on_finished=self._worker_finished,
            )
            self.workers[uid] = worker
            worker.start()

    async def on_claim(self, kind: str, claim: dict[str, Any]) -> None:
        key = (claim["metadata"]["namespace"], claim["metadata"]["name"])
        if kind == "DELETED":
            self.claims.pop(key, None)
        else:
            self.claims[key] = claim
        await self.binder.claim_changed(kind, claim)
        self._schedule_wakeup.set()

    async def _worker_finished(self, worker: PodWorker) -> None:
        self._schedule_wakeup.set()

    async def _terminate_and_delete(self, worker: PodWorker, pod: dict[str, Any]) -> None:
        await worker.terminate(_grace(pod))
        self.workers.pop(worker.uid, None)
        await self._finish_deletion(pod)

    async def _finish_deletion(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiError, *UNREACHABLE):
            await self.api.delete(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )

    # -- scheduling -------------------------------------------------------------------------------

    def _usage(self) -> dict[str, Resources]:
        used: dict[str, Resources] = {name: {} for name in self.nodes}
        for pod in self.pods.values():
            node = pod["spec"].get("nodeName")
            if node in used and (pod.get("status") or {}).get("phase") not in TERMINAL:
                add_usage(used[node], pod["spec"])
        return used

    async def schedule_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._schedule_wakeup.wait(), SCHEDULE_RETRY)
            self._schedule_wakeup.clear()
            pending = sorted(
                (
                    p
                    for p in self.pods.values()
                    if not p["spec"].get("nodeName")
                    and p["spec"].get("schedulerName", "default-scheduler")
                    in self.config.scheduler_names
                    and not p["metadata"].get("deletionTimestamp")
                    and (p.get("status") or {}).get("phase", "Pending") == "Pending"
                ),
                key=lambda p: p["metadata"]["creationTimestamp"],
            )
            for pod in pending:
                try:
                    await self._schedule_one(pod)
                except (ApiError, *UNREACHABLE) as error:
                    if getattr(error, "status", None) not in (404, 409):
                        log.warning("scheduling %s: %s", pod["metadata"]["name"], error)

    async def _schedule_one(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        claims = {
            name: claim for (ns, name), claim in self.claims.items() if ns == meta["namespace"]
        }
        blocker = volume_blocker(pod["spec"], claims)
        if blocker:
            message = f"0/{len(self.nodes)} nodes are available: {len(self.nodes)} {blocker}."
            await self._unschedulable(pod, message)
            return
        decision = schedule(pod["spec"], list(self.nodes.values()), self._usage())
        if decision.node is None:
            await self._unschedulable(pod, decision.message)
            return
        await self.api.post(
            f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding",
            {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": meta["name"], "uid": meta["uid"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": decision.node},
            },
        )
        pod["spec"]["nodeName"] = decision.node  # count it until the watch reports the binding
        self._last_failure.pop(meta["uid"], None)
        await self.scheduler_events.record(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {decision.node}",
        )

    async def _unschedulable(self, pod: dict[str, Any], message: str) -> None:
        uid = pod["metadata"]["uid"]
        last = self._last_failure.get(uid)
        if last and last[0] == message and time.monotonic() - last[1] < 10:
            return
        self._last_failure[uid] = (message, time.monotonic())
        meta = pod["metadata"]
        with contextlib.suppress(ApiError, *UNREACHABLE):
            await self.api.patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                {
                    "status": {
                        "conditions": [
                            {
                                "type": "PodScheduled",
                                "status": "False",
                                "reason": "Unschedulable",
                                "message": message,
                                "lastProbeTime": None,
                                "lastTransitionTime": now(),
                            }
                        ]
                    }
                },
            )
        await self.scheduler_events.record(pod, "Warning", "FailedScheduling", message)

    # -- running ----------------------------------------------------------------------------------

    async def run(self) -> None:
        shutil.rmtree(self.layout.memory_dir, ignore_errors=True)
        if self.server is not None:
            self.port = await self.server.start()
        await self.register_nodes()

        def report(path: str, error: BaseException) -> None:
            log.warning("watch %s interrupted: %s; listing again", path, error)

        self._tasks = [
            asyncio.create_task(
                informer(self.api, "/api/v1/persistentvolumeclaims", self.on_claim, on_error=report)
            ),
            asyncio.create_task(informer(self.api, "/api/v1/pods", self.on_pod, on_error=report)),
            asyncio.create_task(
                informer(
                    self.api,
                    "/api/v1/namespaces",
                    self.finalizer.namespace_changed,
                    on_error=report,
                )
            ),
            asyncio.create_task(self.schedule_loop()),
        ]
        log.info("local kubelet running nodes %s", ", ".join(self.nodes))
        await asyncio.gather(*self._tasks)

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop every pod (a node going away) and the background tasks."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(
            *(w.terminate(min(grace, _grace(w.pod))) for w in self.workers.values()),
            return_exceptions=True,
        )
        self.workers.clear()
        if self.server is not None:
            await self.server.stop()
        shutil.rmtree(self.layout.memory_dir, ignore_errors=True)
