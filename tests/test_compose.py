"""Pod composition's pure functions: resources, scheduling, image, labels, environment, annotation."""

import json

import pytest

from primehub_spawner import compose
from primehub_spawner.catalog import Image, InstanceType
from primehub_spawner.context import Grants, GroupContext, LaunchContext, MLflow, UserContext
from primehub_spawner.options import LaunchRequest, OptionError, decide
from tests.test_permissions import CATALOG


def it(limits, requests=None, **spec):
    body = {"limits": limits, **({"requests": requests} if requests else {}), **spec}
    return InstanceType.from_cr({"metadata": {"name": "t"}, "spec": body})


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [
        (
            it({"cpu": 2, "memory": "2G"}),
            {
                "cpu_limit": 2.0,
                "mem_limit": 2 * 10**9,
                "cpu_guarantee": 2.0,
                "mem_guarantee": 2 * 10**9,
                "extra_resource_limits": {},
            },
        ),
        (
            it({"cpu": 2, "memory": "2Gi"}, {"cpu": 0.5, "memory": "1Gi"}),
            {"cpu_guarantee": 0.5, "mem_guarantee": 2**30, "mem_limit": 2 * 2**30},
        ),  # overcommit
        (
            it({"cpu": 1, "memory": "1G", "gpu": 2}),
            {"extra_resource_limits": {"nvidia.com/gpu": "2"}},
        ),
        (
            it({"cpu": 1, "memory": "1G", "gpu": 1}, gpuResourceName="amd.com/gpu"),
            {"extra_resource_limits": {"amd.com/gpu": "1"}},
        ),
        (
            it({"cpu": 1, "memory": "1G", "gpu": 1}, gpuResourceName="gpu.intel.com/i915"),
            {"extra_resource_limits": {"gpu.intel.com/i915": "1"}},
        ),
        (
            it({"cpu": 1, "memory": "1G", "nvidia.com/gpu": 1}),
            {"extra_resource_limits": {"nvidia.com/gpu": "1"}},
        ),
    ],
    ids=["guaranteed", "overcommit", "nvidia", "amd", "intel", "legacy-nvidia"],
)
def test_resources(instance_type, expected):
    settings = compose.resources(instance_type)
    assert {k: settings[k] for k in expected} == expected


TOLERATE_GPU = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
DEDICATED = {
    "key": "hub.jupyter.org/dedicated",
    "operator": "Equal",
    "value": "user",
    "effect": "NoSchedule",
}


@pytest.mark.parametrize(
    ("spec", "replace", "selector", "tolerations"),
    [
        ({}, True, {"component": "singleuser-server"}, [DEDICATED]),
        (
            {"nodeSelector": {"gpu": "a100"}, "tolerations": [TOLERATE_GPU]},
            True,
            {"gpu": "a100"},
            [TOLERATE_GPU],
        ),
        (
            {"nodeSelector": {"gpu": "a100"}, "tolerations": [TOLERATE_GPU]},
            False,
            {"component": "singleuser-server", "gpu": "a100"},
            [DEDICATED, TOLERATE_GPU],
        ),
        (
            {"nodeSelector": {"component": "gpu-pool"}},
            False,
            {"component": "gpu-pool"},
            [DEDICATED],
        ),
    ],
    ids=["defaults", "replace", "merge", "merge-instance-type-wins"],
)
def test_scheduling(spec, replace, selector, tolerations):
    instance_type = it({"cpu": 1, "memory": "1G"}, **spec)
    settings = compose.scheduling(
        instance_type, {"component": "singleuser-server"}, [DEDICATED], replace
    )
    assert settings == {"node_selector": selector, "tolerations": tolerations}


def choice_for(group, request, ctx):
    return decide(request, ctx, CATALOG)


def context(mlflow=None, timezone=None):
    group = GroupContext(
        "gid",
        "ml",
        "ML",
        mlflow=mlflow,
        grants=Grants.from_roles(["it:cpu-1", "it:gpu-1", "img:base", "img:torch"]),
    )
    return LaunchContext(
        user=UserContext("u", "alice", timezone=timezone), groups=(group,), global_group=None
    )


def test_image_for_gpu_and_pull_secret():
    ctx = context()
    gpu = decide(LaunchRequest(group="ml", instance_type="gpu-1", image="torch"), ctx, CATALOG)
    assert compose.image(gpu) == {"image": "registry/x:1"}
    variant = Image.from_cr(
        {
            "metadata": {"name": "base"},
            "spec": {"url": "cpu:1", "urlForGpu": "gpu:1", "pullSecret": "creds"},
        }
    )
    catalog = type(CATALOG)(
        instance_types=CATALOG.instance_types, images={"base": variant}, datasets={}
    )
    on_gpu = decide(LaunchRequest(group="ml", instance_type="gpu-1", image="base"), ctx, catalog)
    on_cpu = decide(LaunchRequest(group="ml", instance_type="cpu-1", image="base"), ctx, catalog)
    assert compose.image(on_gpu) == {"image": "gpu:1", "image_pull_secrets": ["creds"]}
    assert compose.image(on_cpu)["image"] == "cpu:1"


def test_environment_order_and_rules():
    mlflow = MLflow(
        "http://mlflow:5000",
        "https://mlflow.example",
        (("MLFLOW_TRACKING_USERNAME", "ml"),),
        (("AWS_ACCESS_KEY_ID", "key"),),
    )
    ctx = context(mlflow=mlflow, timezone="Asia/Taipei")
    choice = decide(
        LaunchRequest(
            group="ml",
            instance_type="cpu-1",
            env=(("TZ", "Europe/Paris"), ("ML_ENV_LR", "0.5"), ("EXPERIMENT", "one")),
        ),
        ctx,
        CATALOG,
    )
    env = compose.environment(choice, ctx, "alice", {"ML_ENV_LR": "0.1", "ML_ENV_BATCH": "32"})
    # Rows that replace the hub's are refused before (below); were one to get here, the hub wins.
    assert env["TZ"] == "Asia/Taipei" and env["EXPERIMENT"] == "one"
    assert env["ML_ENV_LR"] == "0.1" and env["ML_ENV_BATCH"] == "32"
    assert (env["GROUP_ID"], env["GROUP_NAME"], env["INSTANCE_TYPE"], env["IMAGE_NAME"]) == (
        "gid",
        "ml",
        "cpu-1",
        "base",
    )
    assert (env["PRIMEHUB_USER"], env["PRIMEHUB_GROUP"]) == ("alice", "ml")
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000" and env["AWS_ACCESS_KEY_ID"] == "key"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "none"
    gpu = decide(LaunchRequest(group="ml", instance_type="gpu-1"), context(), CATALOG)
    assert "NVIDIA_VISIBLE_DEVICES" not in compose.environment(gpu, context(), "alice")
    assert compose.environment(gpu, context(), "alice")["TZ"] == "UTC"


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("MLFLOW_TRACKING_USERNAME", "the MLflow settings of group ml"),
        ("AWS_ACCESS_KEY_ID", "the MLflow settings of group ml"),
        ("MLFLOW_TRACKING_URI", "the MLflow settings of group ml"),
        ("ML_ENV_LR", "dataset ml-env"),
        ("PIP_INDEX_URL", "the hub's configuration"),
    ],
)
def test_the_user_cannot_replace_what_the_launch_sets(name, source):
    mlflow = MLflow(
        "http://mlflow:5000",
        None,
        (("MLFLOW_TRACKING_USERNAME", "ml"),),
        (("AWS_ACCESS_KEY_ID", "k"),),
    )
    ctx = context(mlflow=mlflow)
    request = LaunchRequest(group="ml", instance_type="cpu-1", env=((name, "mine"),))
    choice = decide(request, ctx, CATALOG)
    sources = {"ML_ENV_LR": "dataset ml-env"}
    with pytest.raises(OptionError) as raised:
        compose.check_user_environment(choice, sources, ["PIP_INDEX_URL"])
    assert raised.value.field == f"env.{name}"
    assert raised.value.reason == f"is set for this launch by {source} and cannot be overridden"
    for own in ("EXPERIMENT", "MLFLOW_UI_URL"):  # the group sets no UI URL: the user may
        harmless = decide(
            LaunchRequest(group="ml", instance_type="cpu-1", env=((own, "1"),)), ctx, CATALOG
        )
        compose.check_user_environment(harmless, sources, ["PIP_INDEX_URL"])


def test_a_stored_context_cannot_bring_reserved_mlflow_variables():
    """A launch context stored before variable names were checked still sets none of them."""
    mlflow = MLflow(None, None, (("NVIDIA_VISIBLE_DEVICES", "all"), ("GROUP_ID", "x")), ())
    ctx = context(mlflow=mlflow)
    env = compose.environment(decide(LaunchRequest(group="ml"), ctx, CATALOG), ctx, "alice")
    assert env["NVIDIA_VISIBLE_DEVICES"] == "none" and env["GROUP_ID"] == "gid"


@pytest.mark.parametrize(
    ("gpu_resource", "visible"),
    [("nvidia.com/gpu", None), ("nvidia.com/mig-1g.10gb", None), ("amd.com/gpu", "none")],
)
def test_nvidia_devices_are_left_to_the_device_plugin_for_any_nvidia_resource(
    gpu_resource, visible
):
    spec = {"limits": {"cpu": 1, "memory": "1G", "gpu": 1}, "gpuResourceName": gpu_resource}
    gpu = InstanceType.from_cr({"metadata": {"name": "gpu-1"}, "spec": spec})
    catalog = type(CATALOG)(
        instance_types={**CATALOG.instance_types, "gpu-1": gpu},
        images=CATALOG.images,
        datasets={},
    )
    ctx = context()
    choice = decide(LaunchRequest(group="ml", instance_type="gpu-1"), ctx, catalog)
    assert compose.environment(choice, ctx, "alice").get("NVIDIA_VISIBLE_DEVICES") == visible


@pytest.mark.parametrize("name", ["alice", "Alice.O'Brien", "日本", "x" * 100, "a--b"])
def test_labels_are_valid_label_values(name):
    import re

    for value in compose.labels(name, name).values():
        assert re.fullmatch(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?", value), value


def test_usage_annotation():
    choice = decide(LaunchRequest(group="ml", instance_type="cpu-1"), context(), CATALOG)
    annotation = json.loads(
        compose.usage_annotation("jupyter-alice", "alice", choice)["primehub.io/usage"]
    )
    assert annotation == {
        "component": "jupyter",
        "component_name": "jupyter-alice",
        "group": "ml",
        "user": "alice",
        "instance_type": "cpu-1",
    }
