"""Which container of a starting pod ended, and how the failure reads (escaped) for the user."""

import pytest

from primehub_spawner.failures import ContainerEnd, ServerExitedWhileStarting, ended_container


def pod(notebook=None, init=None):
    status = {
        "containerStatuses": [{"name": "notebook", "restartCount": 0, "state": {"running": {}}}]
    }
    if notebook is not None:
        status["containerStatuses"] = [{"name": "notebook", **notebook}]
    if init is not None:
        status["initContainerStatuses"] = [{"name": "primehub-prepare", **init}]
    return {"status": status}


TERMINATED = {"terminated": {"exitCode": 3, "reason": "Error"}}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        (pod(), None),
        (pod({"state": {"waiting": {"reason": "ContainerCreating"}}}), None),
        (pod({"state": TERMINATED}), ContainerEnd("notebook", 3, "Error", 0, previous=False)),
        (
            pod(
                {
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": TERMINATED,
                    "restartCount": 2,
                }
            ),
            ContainerEnd("notebook", 3, "Error", 2, previous=True),
        ),
        (pod(init={"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}), None),
        (
            pod(
                init={
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                    "lastState": TERMINATED,
                    "restartCount": 1,
                }
            ),
            None,  # it failed once, then did its work
        ),
        (
            pod(init={"state": TERMINATED}),
            ContainerEnd("primehub-prepare", 3, "Error", 0, previous=False, init=True),
        ),
    ],
)
def test_the_container_that_ended(given, expected):
    assert ended_container(given) == expected


def test_the_message_carries_the_exit_code_and_the_escaped_log_lines():
    end = ContainerEnd("notebook", 1, "Error", 2, previous=True)
    failure = ServerExitedWhileStarting("jupyter-alice", end, ["<script>x</script>", "bye"])
    assert "exited with code 1 and was restarted 2 times" in failure.jupyterhub_message
    assert failure.jupyterhub_message.endswith("<script>x</script>\nbye")
    assert "<script>" not in failure.jupyterhub_html_message
    assert "&lt;script&gt;x&lt;/script&gt;\nbye</pre>" in failure.jupyterhub_html_message
    assert "script" not in failure.log_message  # the container's words stay out of the hub's log
    assert failure.status_code == 500 and failure.reason == "server_exited"


@pytest.mark.parametrize(("lines", "says"), [(None, "could not be read"), ([], "wrote nothing")])
def test_without_log_lines_it_says_so(lines, says):
    end = ContainerEnd("notebook", 127, "Error", 0, previous=False)
    assert says in ServerExitedWhileStarting("p", end, lines).jupyterhub_message
