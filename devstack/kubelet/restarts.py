"""When a kubelet restarts an exited container: the pod's restartPolicy and the crash-loop back-off."""

from __future__ import annotations

from dataclasses import dataclass


def restart_policy(spec: dict) -> str:
    """The pod's restartPolicy (Kubernetes defaults it to Always)."""
    return spec.get("restartPolicy") or "Always"


def should_restart(policy: str, exit_code: int, init: bool) -> bool:
    """Whether a container that exited with ``exit_code`` runs again: ``Always`` restarts any
    container, ``OnFailure`` one that failed, ``Never`` none; an init container only reruns after
    a failure (its success lets the pod go on)."""
    if policy == "Never":
        return False
    if policy == "OnFailure" or init:
        return exit_code != 0
    return True


@dataclass
class _Entry:
    delay: float
    since: float


class BackOff:
    """kubelet's crash-loop back-off, per container (its flowcontrol.Backoff as kubelet uses it).

    A container's first exit is restarted at once; from the next one on, the restart waits
    ``initial`` seconds, doubling after each wait up to ``cap``. A container that ran twice ``cap``
    seconds since its last restart starts over without waiting.
    """

    def __init__(self, initial: float, cap: float) -> None:
        self.initial = initial
        self.cap = cap
        self._entries: dict[str, _Entry] = {}

    def wait(self, key: str, finished: float) -> float:
        """Seconds to wait before restarting ``key``, which exited at ``finished`` (0: at once)."""
        entry = self._entries.get(key)
        if entry is None or finished - entry.since > 2 * self.cap:
            self._entries.pop(key, None)
            return 0.0
        return entry.delay

    def restarting(self, key: str, now: float) -> None:
        """``key`` is being restarted now: the next wait is longer."""
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.since = now


def go_duration(seconds: float) -> str:
    """A duration as Go prints it (``10s``, ``1m20s``, ``500ms``), as in kubelet's messages."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return f"{text}{secs}s"
