"""A notebook pod whose container ended while its server was starting, told to the user.

Kubernetes restarts a crashing notebook container (KubeSpawner's ``restartPolicy: OnFailure``)
and reports it waiting in ``CrashLoopBackOff``; KubeSpawner would wait for the start timeout and
then say only that. The spawner instead stops waiting at the first end of the container (or of
its init container) and fails the start with the exit code and the container's last log lines,
in the progress and on the error page. The log lines go to the user, not to the hub's log: they
are the container's output, which may hold anything.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from jupyterhub.spawner import SpawnException

LOG_LINES = 20
LOG_BYTES = 16_384


@dataclass(frozen=True)
class ContainerEnd:
    """How a container of a starting pod ended; ``previous``: its log is the previous instance's
    (Kubernetes already restarted it)."""

    container: str
    exit_code: int
    reason: str
    restarts: int
    previous: bool
    init: bool = False


def _end_of(status: dict[str, Any], init: bool) -> ContainerEnd | None:
    state = status.get("state") or {}
    restarts = int(status.get("restartCount") or 0)
    terminated, previous = state.get("terminated"), False
    if init and terminated and terminated.get("exitCode") == 0:
        return None  # an init container that did its work, whatever it did before
    if not terminated:
        # restarted after it ended: the start has failed at least once
        last = (status.get("lastState") or {}).get("terminated")
        if not (last and restarts > 0):
            return None
        terminated, previous = last, True
    return ContainerEnd(
        status["name"],
        int(terminated.get("exitCode") or 0),
        terminated.get("reason") or "",
        restarts,
        previous=previous,
        init=init,
    )


def ended_container(pod: dict[str, Any] | None, container: str = "notebook") -> ContainerEnd | None:
    """The container (an init container, or ``container``) that ended in this starting pod, if one
    did; None while the pod may still start."""
    if pod is None:
        return None
    status = pod.get("status") or {}
    for entry in status.get("initContainerStatuses") or ():
        end = _end_of(entry, init=True)
        if end is not None:
            return end
    for entry in status.get("containerStatuses") or ():
        if entry.get("name") == container:
            return _end_of(entry, init=False)
    return None


def last_lines(text: str, count: int = LOG_LINES) -> list[str]:
    return text.rstrip("\n").splitlines()[-count:] if text.strip() else []


class ServerExitedWhileStarting(SpawnException):
    """The start failed because the container ended: its exit code and last log lines."""

    def __init__(self, pod_name: str, end: ContainerEnd, lines: list[str] | None) -> None:
        kind = "init container" if end.init else "container"
        what = f"The {kind} {end.container} of pod {pod_name} exited with code {end.exit_code}"
        if end.reason and end.reason not in ("Error", "Completed"):
            what += f" ({end.reason})"
        if end.restarts:
            what += f" and was restarted {end.restarts} time{'s' if end.restarts > 1 else ''}"
        what += " while the server was starting."
        if lines is None:
            tail = "Its log could not be read."
        elif not lines:
            tail = "It wrote nothing to its log."
        else:
            tail = f"Its last {len(lines)} log line{'s' if len(lines) > 1 else ''}:"
        body = "\n".join(lines or ())
        super().__init__(
            f"{what} {tail}" + (f"\n{body}" if body else ""),
            reason="server_exited",
            log_message=f"{what} {tail if lines is None else ''}".strip(),
            message_html=(
                f"{html.escape(what)} {html.escape(tail)}"
                + (f'<pre class="primehub-container-log">{html.escape(body)}</pre>' if body else "")
            ),
            status_code=500,
        )
        self.end = end
        self.lines = lines
        # what JupyterHub's progress stream and its "not running" page show
        self.jupyterhub_message = self.message
        self.jupyterhub_html_message = self.message_html
