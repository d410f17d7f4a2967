"""Container logs as a kubelet keeps them: a file per container instance (the current one and the
previous one are kept), chosen for a request from the container's status as kubelet chooses."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

BLOCK = 64 * 1024


class LogError(Exception):
    """A log request the kubelet refuses: its HTTP status and the kubelet's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def log_dir(pod_dir: Path, container: str) -> Path:
    return pod_dir / "logs" / container


def log_path(pod_dir: Path, container: str, instance: int) -> Path:
    """Where instance ``instance`` (the container's restartCount when it started) writes."""
    return log_dir(pod_dir, container) / f"{instance}.log"


def container_id(pod_uid: str, container: str, instance: int) -> str:
    """A containerID per instance, as a runtime gives each started container its own."""
    return f"devstack://{pod_uid}/{container}/{instance}"


def instance_of(identifier: str | None) -> int | None:
    """The instance a containerID of :func:`container_id` names."""
    tail = (identifier or "").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def prune(pod_dir: Path, container: str, current: int) -> None:
    """Drop the logs of instances before the previous one (kubelet keeps two)."""
    with contextlib.suppress(FileNotFoundError):
        for path in log_dir(pod_dir, container).glob("*.log"):
            if path.stem.isdigit() and int(path.stem) < current - 1:
                path.unlink(missing_ok=True)


def latest_log(pod_dir: Path, container: str) -> Path | None:
    """The newest instance's log file, if any."""
    try:
        found = [p for p in log_dir(pod_dir, container).glob("*.log") if p.stem.isdigit()]
    except FileNotFoundError:
        return None
    return max(found, key=lambda p: int(p.stem), default=None)


def select_instance(status: dict[str, Any], container: str, pod: str, previous: bool) -> int:
    """The instance whose log a request reads, from the container's status (kubelet's
    validateContainerLogStatus): the running or terminated one, else the last terminated one; with
    ``previous``, the last terminated one. A container that never ran has no log: 400."""
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    where = f'container "{container}" in pod "{pod}"'
    if previous:
        identifier = last.get("containerID")
        if not identifier:
            raise LogError(
                400, f'previous terminated container "{container}" in pod "{pod}" not found'
            )
    elif "running" in state:
        identifier = status.get("containerID")
    elif "terminated" in state:
        identifier = state["terminated"].get("containerID") or last.get("containerID")
        if not identifier:
            raise LogError(400, f"{where} is terminated")
    elif last.get("containerID"):
        identifier = last["containerID"]
    else:
        reason = (state.get("waiting") or {}).get("reason")
        if reason == "ErrImagePull":
            raise LogError(400, f"{where} is waiting to start: image can't be pulled")
        if reason == "ImagePullBackOff":
            raise LogError(400, f"{where} is waiting to start: trying and failing to pull image")
        if reason:
            raise LogError(400, f"{where} is waiting to start: {reason}")
        raise LogError(400, f"{where} is waiting to start - no logs yet")
    instance = instance_of(identifier)
    if instance is None:
        raise LogError(400, f"{where} is waiting to start - no logs yet")
    return instance


def _tail(data: bytes, lines: int) -> bytes:
    """The last ``lines`` lines of ``data`` (an unterminated last line counts as one)."""
    if lines <= 0:
        return b""
    cut = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(lines):
        cut = data.rfind(b"\n", 0, cut)
        if cut < 0:
            return data
    return data[cut + 1 :]


def read_log(path: Path, tail_lines: int | None = None, limit_bytes: int | None = None) -> bytes:
    """The log's last ``tail_lines`` lines (all without it), cut to ``limit_bytes`` as kubelet
    does (the first bytes of what was selected). A log not written yet is empty."""
    try:
        log = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return b""
    with log:
        if tail_lines is None:
            return log.read(limit_bytes) if limit_bytes else log.read()
        position = log.seek(0, os.SEEK_END)
        data = b""
        while position > 0:
            step = min(BLOCK, position)
            position -= step
            log.seek(position)
            data = log.read(step) + data
            if data.count(b"\n", 0, len(data) - 1) >= tail_lines:
                break
    data = _tail(data, tail_lines)
    return data[:limit_bytes] if limit_bytes else data
