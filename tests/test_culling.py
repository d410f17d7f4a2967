"""Which idle timeout applies to a server, and the culler's decision from the server's state."""

from datetime import timedelta

import pytest

from primehub_spawner import culling
from primehub_spawner.catalog import CatalogError, InstanceType
from primehub_spawner.context import GroupContext


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90), ("90", 90), ("90s", 90), ("45m", 2700), ("2h", 7200), (" 5 m ", 300)],
)
def test_durations(value, seconds):
    assert culling.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "1d", "-5", "0", 0, True, "1.5h", "5 minutes"])
def test_bad_durations_say_why(value):
    with pytest.raises(ValueError, match=r"duration|longer than 0"):
        culling.parse_duration(value)


def instance_type(idle=None):
    spec = {"limits": {"cpu": 1, "memory": "1G"}, "displayName": "GPU <1>"}
    if idle is not None:
        spec["idleTimeout"] = idle
    return InstanceType.from_cr({"metadata": {"name": "gpu-1"}, "spec": spec})


def group(**attributes):
    raw = {"id": "g1", "name": "ml-team", "attributes": {k: [v] for k, v in attributes.items()}}
    return GroupContext.build(raw, [])


@pytest.mark.parametrize(
    ("type_timeout", "group_timeout", "hub", "expected"),
    [
        ("10m", "30m", 3600, (600, "instance type GPU <1>")),
        (None, "30m", 3600, (1800, "group ml-team")),
        (None, None, 3600, (3600, "this hub")),
        ("2h", None, 3600, (7200, "instance type GPU <1>")),  # longer than the hub's: its own
        (None, "5m", 0, (300, "group ml-team")),
        (None, None, 0, None),
    ],
)
def test_the_instance_type_then_the_group_then_the_hub(type_timeout, group_timeout, hub, expected):
    attributes = {"idle-timeout": group_timeout} if group_timeout else {}
    timeout = culling.applicable_timeout(instance_type(type_timeout), group(**attributes), hub)
    assert (timeout and (timeout.seconds, timeout.source)) == expected


def test_a_bad_instance_type_timeout_is_a_catalog_error_naming_the_field():
    with pytest.raises(CatalogError, match="InstanceType gpu-1: idleTimeout"):
        instance_type("tomorrow")


def test_a_bad_group_timeout_is_ignored():
    assert group(**{"idle-timeout": "later"}).idle_timeout is None


def test_the_group_settings_survive_the_stored_context():
    stored = group(**{"idle-timeout": "15m", "grant-sudo": "true"})
    restored = GroupContext.from_dict(stored.to_dict())
    assert (restored.idle_timeout, restored.grant_sudo) == (900, True)


@pytest.mark.parametrize(
    ("state", "idle", "limit", "culled"),
    [
        ({culling.STATE_KEY: 60}, 59, 3600, False),
        ({culling.STATE_KEY: 60}, 60, 3600, True),
        ({}, 3599, 3600, False),
        ({}, 3600, 3600, True),
        ({culling.STATE_KEY: 7200}, 3600, 3600, False),
        ({culling.STATE_KEY: "60"}, 100, 3600, False),  # not ours: the culler's timeout
        ({}, 10**6, 0, False),  # the hub's 0: never
    ],
)
def test_the_culler_uses_each_servers_own_timeout(state, idle, limit, culled):
    server = {"state": state}
    decision = culling.cull_arbiter(
        inactive=timedelta(seconds=idle), inactive_limit=limit, server=server
    )
    assert decision is culled


@pytest.mark.parametrize(("seconds", "interval"), [(10, 1), (600, 60), (7200, 300), (None, 300)])
def test_activity_is_reported_often_enough_for_the_timeout(seconds, interval):
    timeout = culling.IdleTimeout(seconds, "x") if seconds else None
    assert culling.activity_interval(timeout) == interval


def test_kernel_culling_is_off_at_zero():
    assert culling.kernel_culling_env(0) == {}
    assert culling.kernel_culling_env(30, 60) == {
        "PRIMEHUB_KERNEL_IDLE_TIMEOUT": "30",
        "PRIMEHUB_KERNEL_CULL_INTERVAL": "30",
    }


def test_the_stop_reason_names_the_timeout_and_its_source():
    reason = culling.IdleTimeout(600, "instance type GPU 1").stop_reason()
    assert (
        reason == "stopped after 10 min without activity (the idle timeout of instance type GPU 1)"
    )
