"""Launch records, running servers, group totals, the groups report and the admin page's ages:
pure functions, no hub."""

from __future__ import annotations

import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from primehub_spawner import groups_api, servers, sharing
from primehub_spawner.context import Grants, GroupContext, LaunchContext, Quota, UserContext
from primehub_spawner.notebooks_admin import format_age
from primehub_spawner.options import LaunchRequest, decide
from primehub_spawner.quota import GroupUsage, Usage
from tests.test_permissions import CATALOG

UTC = datetime.UTC
ML = GroupContext(
    "gid",
    "ml",
    "ML <b>Team</b>",
    user_quota=Quota(cpu=4.0, gpu=1),
    group_quota=Quota(cpu=8.0, gpu=1, memory=16 * 10**9),
    grants=Grants.from_roles(["it:cpu-1", "it:gpu-1", "img:base", "img:torch", "ds:rw:scratch"]),
)
CONTEXT = LaunchContext(user=UserContext("u", "alice"), groups=(ML,), global_group=None)


def record(instance_type: str = "gpu-1", group: GroupContext = ML) -> servers.LaunchRecord:
    context = LaunchContext(user=UserContext("u", "alice"), groups=(group,), global_group=None)
    choice = decide(LaunchRequest(group=group.name, instance_type=instance_type), context, CATALOG)
    return servers.LaunchRecord.of(choice)


def test_a_launch_record_carries_the_group_key_names_and_resources():
    launched = record()
    it = CATALOG.instance_types["gpu-1"]
    assert launched.group_key == ML.key and launched.group_display_name == "ML <b>Team</b>"
    assert launched.instance_type == "gpu-1"
    assert launched.instance_type_display_name == it.display_name
    assert (launched.cpu, launched.memory, launched.gpu) == (
        float(it.cpu_limit),
        int(it.memory_limit),
        1,
    )
    assert launched.group_quota == ML.group_quota
    assert launched.usage == Usage(Decimal(str(float(it.cpu_limit))), it.memory_limit, 1)


@pytest.mark.parametrize(
    "stored",
    [None, "ml", {"group": "ml"}, {**record().to_dict(), "cpu": None, "gpu": "x", "extra": 1}],
)
def test_a_state_from_another_version_gives_no_record_but_no_error(stored):
    assert servers.LaunchRecord.from_dict(stored) is None


def test_a_launch_record_survives_the_servers_state():
    launched = record()
    assert servers.LaunchRecord.from_dict(launched.to_dict()) == launched
    odd_quota = {**launched.to_dict(), "group_quota": {"cpu": "lots"}}
    assert servers.LaunchRecord.from_dict(odd_quota).group_quota == Quota()


def spawner(launched, active=True, ready=True, started=None, shared_with=()):
    shares = [SimpleNamespace(group=SimpleNamespace(name=key)) for key in shared_with]
    return SimpleNamespace(
        launch_record=launched,
        active=active,
        ready=ready,
        orm_spawner=SimpleNamespace(started=started, shares=shares),
    )


def user(name, **spawners):
    return SimpleNamespace(
        name=name, spawners=spawners, server_url=lambda server: f"/user/{name}/{server}/"
    )


NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NAIVE_START = datetime.datetime(2026, 11, 27, 11, 0)  # JupyterHub stores naive UTC


def test_running_servers_are_the_active_ones_with_a_record_in_the_group_asked_for():
    other = GroupContext("g2", "cv", "Vision", grants=Grants.from_roles(["it:cpu-1", "img:base"]))
    users = [
        user(
            "alice",
            team=spawner(record(), started=NAIVE_START, shared_with=[ML.key]),
            old=spawner(record(), active=False),
            plain=spawner(None),
        ),
        user("bob", eyes=spawner(record("cpu-1", other), ready=False)),
    ]
    every = list(servers.running_servers(users))
    assert [(s.owner, s.name) for s in every] == [("alice", "team"), ("bob", "eyes")]
    only_ml = list(servers.running_servers(users, ML.key))
    assert [(s.owner, s.name, s.shared) for s in only_ml] == [("alice", "team", True)]
    model = only_ml[0].to_json(NOW)
    assert model["age_seconds"] == 3600 and model["started"] == "2026-11-27T11:00:00Z"
    assert model["url"] == "/user/alice/team/" and model["shared_with_group"] is True
    assert model["group"] == {"key": ML.key, "name": "ml", "display_name": "ML <b>Team</b>"}
    assert every[1].to_json(NOW)["age_seconds"] is None and not every[1].ready


def test_group_totals_add_up_and_take_the_latest_launchs_quota():
    later = GroupContext("gid", "ml", "ML renamed", group_quota=Quota(gpu=2), grants=ML.grants)
    early = servers.RunningServer(
        "alice", "a", "/a", True, NOW - datetime.timedelta(hours=2), record("gpu-1"), False
    )
    late = servers.RunningServer(
        "bob", "b", "/b", True, NOW - datetime.timedelta(hours=1), record("cpu-1", later), False
    )
    (total,) = servers.group_totals([late, early])
    assert total.servers == 2 and total.display_name == "ML renamed"
    assert total.quota == Quota(gpu=2)
    assert total.used == early.record.usage + late.record.usage
    assert total.to_json()["quota"] == {"cpu": None, "memory": None, "gpu": 2}


def test_the_groups_report_says_what_fits_now():
    busy = GroupUsage(user=Usage(), group=Usage(Decimal(1), Decimal(10**9), 1))
    (report,) = groups_api.groups_report(CONTEXT, CATALOG, lambda group: busy)
    assert report["key"] == ML.key and report["display_name"] == "ML <b>Team</b>"
    assert report["quota"]["group"] == {"cpu": 8.0, "memory": 16 * 10**9, "gpu": 1}
    assert report["usage"]["group"] == {"cpu": 1.0, "memory": 10**9, "gpu": 1}
    over = {t["name"]: t["over_quota"] for t in report["instance_types"]}
    assert over["cpu-1"] is None
    assert over["gpu-1"] == "the group's quota: GPU: 1 allowed, 1 in use, 1 requested"
    assert {i["name"] for i in report["images"]} == {"base", "torch"}
    assert [(d["name"], d["writable"]) for d in report["datasets"]] == [("scratch", True)]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0, "0 s"), (59, "59 s"), (60, "1 min"), (3725, "1 h 2 min"), (90061, "1 d 1 h")],
)
def test_ages_read_like_a_clock(seconds, text):
    assert format_age(seconds) == text


@pytest.mark.parametrize(
    ("configured", "in_user_role"),
    [
        ([], False),
        ([{"name": "user", "scopes": ["self", "shares!user"]}], True),
        ([{"name": "tester", "services": ["t"], "scopes": ["admin:users"]}], False),
    ],
)
def test_enabling_group_sharing_keeps_the_roles_already_configured(configured, in_user_role):
    c = Config()
    if configured:
        c.JupyterHub.load_roles = [dict(role) for role in configured]
    c.JupyterHub.custom_scopes = {"custom:other:x": {"description": "x"}}
    sharing.enable_group_sharing(c)
    sharing.enable_group_sharing(c)  # twice changes nothing
    scope = f"{sharing.GROUP_SHARE_SCOPE}!user"
    roles = (
        {role["name"]: role for role in c.JupyterHub.get("load_roles", [])} if configured else {}
    )
    for role in configured:
        assert set(role["scopes"]) <= set(roles[role["name"]]["scopes"])
    if in_user_role:  # JupyterHub ignores extra_user_scopes when load_roles redefines the role
        assert roles["user"]["scopes"].count(scope) == 1
    else:
        assert c.JupyterHub.extra_user_scopes.get_value(set()) == {scope}
    assert set(c.JupyterHub.custom_scopes) == {"custom:other:x", sharing.GROUP_SHARE_SCOPE}
