"""The launch context's parsing rules: resource roles, group and user attributes, round trips."""

import json
import logging

import pytest

from primehub_spawner.context import (
    Grants,
    GroupContext,
    LaunchContext,
    Quota,
    SharedVolume,
    UserContext,
)


@pytest.mark.parametrize(
    ("roles", "prefix", "instance_types", "images", "datasets"),
    [
        (
            ["it:cpu-1", "img:base", "ds:mnist", "ds:rw:scratch"],
            "",
            {"cpu-1"},
            {"base"},
            {"mnist": False, "scratch": True},
        ),
        (["ds:scratch", "ds:rw:scratch"], "", set(), set(), {"scratch": True}),
        (
            ["ds:rw:scratch", "ds:scratch"],
            "",
            set(),
            set(),
            {"scratch": True},
        ),  # order does not matter
        (["ph:it:cpu-1", "it:cpu-2", "ph:img:x"], "ph", {"cpu-1"}, {"x"}, {}),
        (
            ["offline_access", "default-roles-primehub", "it:", "img", "ds:rw:", "ds:Bad_Name"],
            "",
            set(),
            set(),
            {},
        ),
        (["ds:rw", "ds:team:rw:papers"], "", set(), set(), {"rw": False, "papers": True}),
        (["uma_authorization", "xx:it:a"], "ph", set(), set(), {}),
    ],
    ids=["plain", "rw-after-ro", "rw-before-ro", "prefix", "malformed", "labels", "other-prefix"],
)
def test_grants_from_roles(roles, prefix, instance_types, images, datasets):
    grants = Grants.from_roles(roles, prefix)
    assert set(grants.instance_types) == instance_types
    assert set(grants.images) == images
    assert dict(grants.datasets) == datasets


def group(attributes=None, name="ml-team"):
    return {"id": "g1", "name": name, "path": f"/{name}", "attributes": attributes or {}}


@pytest.mark.parametrize(
    ("attributes", "user_quota", "group_quota"),
    [
        ({}, Quota(), Quota()),
        (
            {"quota-cpu": ["4"], "quota-gpu": ["1"], "quota-memory": ["8G"]},
            Quota(4.0, 1, 8 * 10**9),
            Quota(),
        ),
        ({"quota-memory": ["8"]}, Quota(memory=8 * 2**30), Quota()),  # PrimeHub's bare GB
        ({"quota-memory": ["8Gi"]}, Quota(memory=8 * 2**30), Quota()),
        ({"quota-memory": ["8000M"]}, Quota(memory=8_000_000_000), Quota()),
        ({"quota-cpu": ["500m"], "project-quota-cpu": ["10"]}, Quota(cpu=0.5), Quota(cpu=10.0)),
        ({"quota-cpu": ["lots"], "quota-gpu": ["1.5"], "quota-memory": ["-1"]}, Quota(), Quota()),
        ({"quota-cpu": [""], "quota-gpu": []}, Quota(), Quota()),
        ({"quota-cpu": ["0"]}, Quota(cpu=0.0), Quota()),
        ({"quota-gpu": ["2", "3"]}, Quota(gpu=2), Quota()),
    ],
    ids=[
        "unset",
        "all",
        "bare-gb",
        "binary-memory",
        "decimal-memory",
        "millicores",
        "garbage",
        "empty",
        "zero",
        "multi-valued",
    ],
)
def test_quota_attributes(attributes, user_quota, group_quota, caplog):
    built = GroupContext.build(group(attributes), [])
    assert built.user_quota == user_quota
    assert built.group_quota == group_quota


def test_bad_values_are_logged_with_the_group_and_key(caplog):
    with caplog.at_level(logging.WARNING, logger="primehub_spawner.context"):
        GroupContext.build(group({"quota-cpu": ["lots"]}), [])
    assert (
        "group /ml-team: attribute quota-cpu ignored: it is not a Kubernetes quantity"
        in caplog.text
    )


SECRET = "s3cr3t-AKIA-value"
LEAKY_ATTRIBUTES = {
    "a malformed quantity": ("group", "quota-cpu", [SECRET], "quota-cpu ignored: it is not a"),
    "a negative size": ("user", "volumeCapacity", [f"-{SECRET}"], "volumeCapacity ignored: it"),
    "several values": ("group", "mlflow-ui-url", [SECRET, "b"], "mlflow-ui-url has 2 values"),
    "not JSON": ("group", "mlflow-artifact-envs", [f"AWS_SECRET={SECRET}"], "not JSON"),
    "not a list": ("user", "predefinedEnvs", [json.dumps({"k": SECRET})], "not a list"),
    "an entry without a name": (
        "group",
        "mlflow-artifact-envs",
        [json.dumps([{"value": SECRET}])],
        "mlflow-artifact-envs[0] ignored: not {name, value}",
    ),
    "an invalid name": (
        "user",
        "predefinedEnvs",
        [json.dumps([{"name": f"1{SECRET}", "value": SECRET}])],
        "predefinedEnvs[0] ignored: its name is not a valid environment variable name",
    ),
    "an unknown time zone": ("user", "timezone", [f"Mars/{SECRET}"], "not an IANA time zone"),
    "presets too long to carry": (
        "user",
        "predefinedEnvs",
        [json.dumps([{"name": "BIG", "value": SECRET * 5000}])],
        "predefinedEnvs ignored: longer than 65,536 characters",
    ),
}


@pytest.mark.parametrize(
    ("owner", "key", "values", "logged"),
    list(LEAKY_ATTRIBUTES.values()),
    ids=list(LEAKY_ATTRIBUTES),
)
@pytest.mark.reliability("secrets")
def test_ignored_attributes_are_logged_by_name_and_reason_never_value(
    owner, key, values, logged, caplog
):
    with caplog.at_level(logging.WARNING, logger="primehub_spawner.context"):
        if owner == "group":
            GroupContext.build(group({key: values}), [])
        else:
            UserContext.build({"id": "u1", "username": "alice", "attributes": {key: values}}, False)
    assert logged in caplog.text
    assert SECRET not in caplog.text


def test_group_variables_may_not_replace_the_hubs_or_device_isolation(caplog):
    envs = [
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
        {"name": "JUPYTERHUB_API_URL", "value": SECRET},
        {"name": "MLFLOW_TRACKING_USERNAME", "value": "u"},
    ]
    with caplog.at_level(logging.WARNING, logger="primehub_spawner.context"):
        built = GroupContext.build(group({"mlflow-artifact-envs": [json.dumps(envs)]}), [])
    assert built.mlflow.artifact_envs == (("MLFLOW_TRACKING_USERNAME", "u"),)
    assert (
        "mlflow-artifact-envs[0] ignored: its name NVIDIA_VISIBLE_DEVICES is reserved: container "
        "runtimes read it to choose the devices a server gets" in caplog.text
    )
    assert "mlflow-artifact-envs[1] ignored: its name JUPYTERHUB_API_URL is set by the hub" in (
        caplog.text
    )
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (
            {"enabled-shared-volume": ["true"], "shared-volume-capacity": ["1"]},
            SharedVolume("1Gi", True, True),
        ),
        (
            {
                "enabled-shared-volume": ["TRUE"],
                "shared-volume-capacity": ["500Mi"],
                "home-symlink": ["false"],
                "launch-group-only": ["false"],
            },
            SharedVolume("500Mi", False, False),
        ),
        (
            {"enabled-shared-volume": ["true"]},
            None,
        ),  # no capacity: no volume (PrimeHub required one)
        ({"enabled-shared-volume": ["false"], "shared-volume-capacity": ["1"]}, None),
        ({"enabled-shared-volume": ["maybe"], "shared-volume-capacity": ["1"]}, None),
    ],
    ids=["defaults", "explicit", "no-capacity", "disabled", "not-boolean"],
)
def test_shared_volume(attributes, expected):
    assert GroupContext.build(group(attributes), []).shared_volume == expected


def test_display_name_mlflow_and_round_trip():
    built = GroupContext.build(
        group(
            {
                "displayName": ["<b>Vision & Co</b>"],
                "mlflow-tracking-uri": ["http://mlflow:5000"],
                "mlflow-tracking-envs": [
                    json.dumps(
                        [
                            {"name": "MLFLOW_TRACKING_USERNAME", "value": "u"},
                            {"name": "1BAD", "value": "x"},
                        ]
                    )
                ],
                "enabled-shared-volume": ["true"],
                "shared-volume-capacity": ["2"],
                "home-symlink": ["false"],
            }
        ),
        ["it:cpu-1", "ds:rw:scratch"],
    )
    assert (
        built.display_name == "<b>Vision & Co</b>"
    )  # kept verbatim: escaping is the template's job
    assert built.mlflow.tracking_envs == (("MLFLOW_TRACKING_USERNAME", "u"),)
    assert GroupContext.from_dict(json.loads(json.dumps(built.to_dict()))) == built


@pytest.mark.parametrize(
    ("attributes", "capacity", "timezone", "envs"),
    [
        ({}, None, None, ()),
        ({"volumeCapacity": ["5"], "timezone": ["Asia/Taipei"]}, "5Gi", "Asia/Taipei", ()),
        ({"volumeCapacity": ["20Gi"], "timezone": ["Mars/Olympus"]}, "20Gi", None, ()),
        ({"volumeCapacity": ["big"]}, None, None, ()),
        (
            {
                "predefinedEnvs": [
                    '[{"name": "A", "value": "1"}, {"name": "B C", "value": "2"}, "x"]'
                ]
            },
            None,
            None,
            (("A", "1"),),
        ),
        ({"predefinedEnvs": ["{not json"]}, None, None, ()),
    ],
    ids=["unset", "gb-number", "quantity-bad-tz", "bad-capacity", "envs", "envs-not-json"],
)
def test_user_attributes(attributes, capacity, timezone, envs):
    user = UserContext.build(
        {"id": "u1", "username": "alice", "attributes": attributes}, admin=False
    )
    assert (user.volume_capacity, user.timezone, user.envs) == (capacity, timezone, envs)


def test_launch_context_round_trip_is_compact():
    context = LaunchContext(
        user=UserContext("u1", "alice", admin=True, envs=(("A", "1"),)),
        groups=(GroupContext.build(group({"quota-cpu": ["2"]}), ["it:cpu-2"]),),
        global_group=GroupContext.build(group({}, name="everyone"), ["it:cpu-1"]),
    )
    data = json.loads(json.dumps(context.to_dict()))
    assert LaunchContext.from_dict(data) == context
    assert "group_quota" not in data["groups"][0]  # unlimited quotas take no space
    with pytest.raises(ValueError, match="version"):
        LaunchContext.from_dict({**data, "v": 99})
