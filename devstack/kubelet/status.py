"""A pod's status as a kubelet reports it: container states, conditions and the phase."""

from __future__ import annotations

from typing import Any

TERMINAL = ("Succeeded", "Failed")


def waiting_status(container: dict[str, Any], reason: str) -> dict[str, Any]:
    """A container's status before it first runs."""
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": {"reason": reason}},
    }


def _ended(status: dict[str, Any]) -> dict[str, Any] | None:
    """The container's last end while it waits to run again (a crash loop), or its end."""
    state = status.get("state") or {}
    if "terminated" in state:
        return state["terminated"]
    if "waiting" in state:
        return (status.get("lastState") or {}).get("terminated")
    return None


def pod_phase(spec: dict[str, Any], statuses: dict[str, dict[str, Any]]) -> str:
    """The phase from the containers' states and the restartPolicy (kubelet's getPhase): Running
    once every container has started and one runs or will be restarted; Succeeded or Failed when
    all have ended for good."""
    policy = spec.get("restartPolicy") or "Always"
    pending_init = failed_init = 0
    for container in spec.get("initContainers") or ():
        status = statuses.get(container["name"]) or {}
        ended = _ended(status)
        if ended is None:
            pending_init += 1
        elif ended.get("exitCode", 0) != 0:
            failed_init += 1
    if failed_init and policy == "Never":
        return "Failed"
    running = stopped = succeeded = waiting = 0
    for container in spec["containers"]:
        state = (statuses.get(container["name"]) or {}).get("state") or {}
        ended = _ended(statuses.get(container["name"]) or {})
        if "running" in state:
            running += 1
        elif ended is not None:
            stopped += 1
            succeeded += "terminated" in state and ended.get("exitCode", 0) == 0
        else:
            waiting += 1
    if pending_init or waiting:
        return "Pending"
    if running:
        return "Running"
    if policy == "Always":
        return "Running"  # every container is being restarted
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if policy == "Never" else "Running"


def pod_status(
    spec: dict[str, Any],
    statuses: dict[str, dict[str, Any]],
    ready: set[str],
    phase: str,
    start_time: str,
    pod_ip: str | None,
) -> dict[str, Any]:
    """The pod's ``status`` as the kubelet writes it."""
    init_names = [c["name"] for c in spec.get("initContainers") or ()]
    names = [c["name"] for c in spec["containers"]]
    incomplete = [
        n
        for n in init_names
        if (statuses[n]["state"].get("terminated") or {}).get("exitCode", 1) != 0
    ]
    unready = [n for n in names if n not in ready]
    for name in names:
        statuses[name]["ready"] = name in ready

    def condition(kind: str, true: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        entry = {
            "type": kind,
            "status": "True" if true else "False",
            "lastProbeTime": None,
            "lastTransitionTime": start_time,
        }
        if not true and reason:
            entry.update(reason=reason, message=message)
        return entry

    not_ready = f"containers with unready status: [{' '.join(unready)}]"
    status: dict[str, Any] = {
        "phase": phase,
        "hostIP": "127.0.0.1",
        "startTime": start_time,
        "conditions": [
            condition(
                "Initialized",
                not incomplete,
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(incomplete)}]",
            ),
            condition("Ready", not unready, "ContainersNotReady", not_ready),
            condition("ContainersReady", not unready, "ContainersNotReady", not_ready),
            condition("PodScheduled", True),
        ],
        "containerStatuses": [statuses[n] for n in names],
    }
    if init_names:
        status["initContainerStatuses"] = [statuses[n] for n in init_names]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status
