"""The one validation path: shape of user_options, then the decision against context and catalog."""

from decimal import Decimal

import pytest

from primehub_spawner.catalog import InstanceType
from primehub_spawner.context import Quota
from primehub_spawner.options import LaunchRequest, OptionError, decide, parse_user_options
from primehub_spawner.quota import Ledger, Usage, exceeded, gpu_resource_names, usage
from tests.test_permissions import CATALOG, context, group

GOOD = {
    "group": "ml",
    "instance_type": "cpu-1",
    "image": "base",
    "safe_mode": True,
    "env": {"A_1": "x"},
}


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ([1, 2], "user_options", "must be an object"),
        ({**GOOD, "profile": "x"}, "profile", "is not a known option"),
        ({**GOOD, "group": ["ml"]}, "group", "must be a string, not list"),
        ({**GOOD, "instance_type": 3}, "instance_type", "must be a string, not int"),
        ({**GOOD, "image": {"a": 1}}, "image", "must be a string, not dict"),
        ({**GOOD, "group": ""}, "group", "must be 1 to 253 characters long"),
        ({**GOOD, "group": "g" * 254}, "group", "must be 1 to 253 characters long"),
        ({**GOOD, "group": "ml\n"}, "group", "must not contain control characters"),
        ({**GOOD, "group": "ml\u202e"}, "group", "must not contain control characters"),
        ({**GOOD, "safe_mode": "yes"}, "safe_mode", "must be true or false"),
        ({**GOOD, "safe_mode": 1}, "safe_mode", "must be true or false"),
        ({**GOOD, "safe_mode": None}, "safe_mode", "must be true or false"),
        ({**GOOD, "group": None}, "group", "must be a string, not null"),
        ({**GOOD, "image": None}, "image", "must be a string, not null"),
        ({**GOOD, "env": None}, "env", "must be an object"),
        ({**GOOD, "env": ["A=1"]}, "env", "must be an object"),
        ({**GOOD, "env": {"A=B": "1"}}, "env.A=B", "is not a valid variable name"),
        ({**GOOD, "env": {"A B": "1"}}, "env.A B", "is not a valid variable name"),
        ({**GOOD, "env": {"1A": "1"}}, "env.1A", "is not a valid variable name"),
        (
            {**GOOD, "env": {"JUPYTERHUB_API_TOKEN": "x"}},
            "env.JUPYTERHUB_API_TOKEN",
            "set by the hub",
        ),
        ({**GOOD, "env": {"A": 1}}, "env.A", "must be a string, not int"),
        ({**GOOD, "env": {"A": None}}, "env.A", "must be a string, not NoneType"),
        ({**GOOD, "env": {"A": "x" * 40000}}, "env.A", "at most"),
        ({**GOOD, "env": {f"V{i}": "" for i in range(101)}}, "env", "at most 100"),
        (
            {**GOOD, "env": {f"V{i}": "x" * 1000 for i in range(70)}},
            "env",
            "characters as your saved presets; at most 65,536 are allowed",
        ),
    ],
)
def test_bad_shapes(options, field, reason):
    with pytest.raises(OptionError) as raised:
        parse_user_options(options)
    assert raised.value.field == field
    assert reason in raised.value.reason


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        *(
            (name, "is set by the hub and cannot be overridden")
            for name in (
                "JUPYTERHUB_API_URL",
                "JPY_API_TOKEN",
                "JUPYTER_IMAGE_SPEC",
                "MEM_LIMIT",
                "CPU_GUARANTEE",
                "TZ",
                "GROUP_ID",
                "GROUP_NAME",
                "INSTANCE_TYPE",
                "IMAGE_NAME",
                "PRIMEHUB_USER",
                "PRIMEHUB_SAFE_MODE_ENABLED",
            )
        ),
        *(
            (name, "is reserved: container runtimes read it to choose the devices a server gets")
            for name in (
                "NVIDIA_VISIBLE_DEVICES",
                "NVIDIA_DRIVER_CAPABILITIES",
                "NVIDIA_MIG_CONFIG_DEVICES",
                "AMD_VISIBLE_DEVICES",
                "HABANA_VISIBLE_DEVICES",
                "ASCEND_VISIBLE_DEVICES",
            )
        ),
    ],
)
def test_variables_of_the_hub_and_of_device_isolation_are_refused(name, reason):
    with pytest.raises(OptionError) as raised:
        parse_user_options({**GOOD, "env": {name: "all"}})
    assert (raised.value.field, raised.value.reason) == (f"env.{name}", reason)


def test_similar_names_are_the_users():
    names = (
        "TZ_NAME",
        "MY_NVIDIA_VISIBLE_DEVICES",
        "CUDA_VISIBLE_DEVICES",
        "MLFLOW_RUN_ID",
        "MLFLOW_TRACKING_URI",  # the user's own, unless the launch group sets it (test_compose.py)
    )
    request = parse_user_options({**GOOD, "env": dict.fromkeys(names, "1")})
    assert [name for name, _ in request.env] == list(names)


def test_good_shape_and_empty_options():
    assert parse_user_options(GOOD) == LaunchRequest("ml", "cpu-1", "base", True, (("A_1", "x"),))
    assert parse_user_options(None) == LaunchRequest()
    assert parse_user_options({}) == LaunchRequest()


CTX = context(
    group("ml", "it:cpu-2", "it:gpu-1", "img:torch", "img:sci", "img:building"),
    group("cv", "it:cpu-2"),
    global_roles=["it:cpu-1", "img:base"],
)


@pytest.mark.parametrize(
    ("request_", "last", "expected"),
    [
        (
            LaunchRequest(),
            None,
            ("ml", "cpu-1", "base"),
        ),  # first group, first type, first usable image
        (LaunchRequest(), "cv", ("cv", "cpu-1", "base")),  # the last used group
        (LaunchRequest(), "gone", ("ml", "cpu-1", "base")),  # a last group the user left
        (LaunchRequest(group="ml", instance_type="gpu-1"), None, ("ml", "gpu-1", "base")),
        (
            LaunchRequest(group="ml", instance_type="gpu-1", image="torch"),
            None,
            ("ml", "gpu-1", "torch"),
        ),
        (
            LaunchRequest(group="ml", instance_type="gpu-1", image="sci"),
            None,
            ("ml", "gpu-1", "sci"),
        ),
    ],
)
def test_decisions(request_, last, expected):
    choice = decide(request_, CTX, CATALOG, last_group=last)
    assert (
        choice.group,
        choice.instance_type.instance_type.name,
        choice.image.image.name,
    ) == expected
    assert choice.user_options()["group"] == expected[0]


@pytest.mark.parametrize(
    ("request_", "field", "reason"),
    [
        (LaunchRequest(group="vision"), "group", "you are not a member of group 'vision'"),
        (LaunchRequest(group="everyone"), "group", "you are not a member of group 'everyone'"),
        (
            LaunchRequest(group="cv", instance_type="gpu-1"),
            "instance_type",
            "'gpu-1' is not available in group 'cv'",
        ),
        (
            LaunchRequest(group="ml", instance_type="nope"),
            "instance_type",
            "'nope' is not available",
        ),
        (
            LaunchRequest(group="cv", image="torch"),
            "image",
            "'torch' is not available in group 'cv'",
        ),
        (LaunchRequest(group="ml", image="building"), "image", "image building is not ready yet"),
        (
            LaunchRequest(group="ml", instance_type="cpu-2", image="torch"),
            "image",
            "image torch needs a GPU and instance type cpu-2 has none",
        ),
    ],
)
def test_refusals(request_, field, reason):
    with pytest.raises(OptionError) as raised:
        decide(request_, CTX, CATALOG)
    assert raised.value.field == field
    assert reason in raised.value.reason


def test_no_group_at_all():
    with pytest.raises(OptionError, match="no group is configured for you"):
        decide(LaunchRequest(), context(), CATALOG)


def pod(group_label, user_label, cpu="1", memory="1G", gpu=None, phase="Running", deleting=False):
    limits = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": gpu} if gpu else {})}
    metadata = {
        "name": "p",
        "labels": {"primehub.io/group": group_label, "primehub.io/user": user_label},
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": metadata,
        "spec": {"containers": [{"resources": {"limits": limits}}]},
        "status": {"phase": phase},
    }


def test_usage_counts_pending_and_running_pods_of_the_group_and_user():
    pods = [
        pod("ml", "alice"),
        pod("ml", "alice", cpu="500m", gpu="1", phase="Pending"),
        pod("ml", "bob", cpu="2"),
        pod("cv", "alice"),
        pod("ml", "alice", phase="Succeeded"),
        pod("ml", "alice", deleting=True),
    ]
    assert usage(pods, "ml", "alice") == Usage(Decimal("1.5"), Decimal(2 * 10**9), 1)
    assert usage(pods, "ml") == Usage(Decimal("3.5"), Decimal(3 * 10**9), 1)


def test_usage_counts_every_gpu_resource_the_catalog_uses():
    mig = pod("ml", "alice", cpu="1")
    mig["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] = "1"
    instance_types = [
        InstanceType.from_cr(
            {
                "metadata": {"name": name},
                "spec": {"limits": {"cpu": 1, "memory": "1G", "gpu": 1}, **spec},
            }
        )
        for name, spec in (("gpu-1", {}), ("mig-1", {"gpuResourceName": "nvidia.com/mig-1g.10gb"}))
    ]
    names = gpu_resource_names(instance_types)
    assert names >= {"nvidia.com/gpu", "amd.com/gpu", "nvidia.com/mig-1g.10gb"}
    assert usage([mig], "ml", "alice", names).gpu == 1
    assert usage([mig], "ml", "alice").gpu == 0  # a resource no instance type names is not a GPU


@pytest.mark.parametrize(
    ("quota", "used", "wanted", "message"),
    [
        (Quota(), Usage(Decimal(100)), Usage(Decimal(100)), None),
        (Quota(cpu=4.0), Usage(Decimal(2)), Usage(Decimal(2)), None),
        (
            Quota(cpu=4.0),
            Usage(Decimal(3)),
            Usage(Decimal(2)),
            "CPU: 4 allowed, 3 in use, 2 requested",
        ),
        (
            Quota(gpu=1),
            Usage(gpu=1),
            Usage(gpu=1),
            "GPU: 1 allowed, 1 in use, 1 requested",
        ),
        (
            Quota(memory=8 * 10**9),
            Usage(memory=Decimal(7 * 10**9)),
            Usage(memory=Decimal(2 * 10**9)),
            "memory: 8 GB allowed, 7 GB in use, 2 GB requested",
        ),
        (
            Quota(cpu=0.0),
            Usage(),
            Usage(Decimal(1)),
            "CPU: 0 allowed, 0 in use, 1 requested",
        ),
    ],
)
def test_exceeded(quota, used, wanted, message):
    assert exceeded(quota, used, wanted) == message


def test_ledger_counts_reservations_until_their_pod_is_seen():
    ledger = Ledger()
    ledger.reserve("alice/", "jupyter-alice", "alice", "ml", Usage(Decimal(1)))
    ledger.reserve("bob/", "jupyter-bob", "bob", "ml", Usage(Decimal(2)))
    assert ledger.pending([], "ml") == Usage(Decimal(3))
    assert ledger.pending([], "ml", "alice") == Usage(Decimal(1))
    assert ledger.pending(["jupyter-alice"], "ml") == Usage(Decimal(2))
    ledger.release("bob/")
    assert ledger.pending([], "ml") == Usage(Decimal(1))
