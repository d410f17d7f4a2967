"""Resolution of a group's offer: global vs group grants, prefixes, rw vs ro, launchGroupOnly,
not-ready images, GPU/CPU pairing, unknown roles — and independence from group order."""

from itertools import permutations

import pytest

from primehub_spawner.catalog import Catalog, CatalogError, Dataset, Image, InstanceType
from primehub_spawner.context import Grants, GroupContext, LaunchContext, UserContext
from primehub_spawner.permissions import compatibility, resolve


def it(name, gpu=0, display=None):
    return InstanceType.from_cr(
        {
            "metadata": {"name": name},
            "spec": {
                "displayName": display or name,
                "limits": {"cpu": 1, "memory": "1G", **({"gpu": gpu} if gpu else {})},
            },
        }
    )


def img(name, kind="both", url="registry/x:1", display=None):
    spec = {"type": kind, "displayName": display or name}
    if url:
        spec["url"] = url
    return Image.from_cr({"metadata": {"name": name}, "spec": spec})


def ds(name, launch_group_only=None):
    annotations = (
        {}
        if launch_group_only is None
        else {"dataset.primehub.io/launchGroupOnly": str(launch_group_only).lower()}
    )
    return Dataset.from_cr(
        {
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"type": "pv", "volumeName": name},
        }
    )


CATALOG = Catalog(
    instance_types={
        i.name: i
        for i in (
            it("cpu-1", display="CPU 1"),
            it("cpu-2", display="CPU 2"),
            it("gpu-1", gpu=1, display="GPU 1"),
        )
    },
    images={
        i.name: i
        for i in (
            img("base", display="Base"),
            img("torch", "gpu", display="PyTorch"),
            img("sci", "cpu", display="SciPy"),
            img("building", url=None, display="Building"),
        )
    },
    datasets={
        d.name: d
        for d in (
            ds("docs"),
            ds("mnist", True),
            ds("shared", False),
            ds("scratch", True),
            ds("legacy"),
        )
    },
)


def group(name, *roles, prefix=""):
    return GroupContext(
        id=name, name=name, display_name=name, grants=Grants.from_roles(roles, prefix)
    )


def context(*groups, global_roles=(), prefix=""):
    return LaunchContext(
        user=UserContext("u", "alice"),
        groups=tuple(groups),
        global_group=group("everyone", *global_roles, prefix=prefix),
    )


@pytest.mark.parametrize(
    ("groups", "global_roles", "launch", "instance_types", "images"),
    [
        (
            [group("ml", "it:cpu-2", "img:torch")],
            ["it:cpu-1", "img:base"],
            "ml",
            [("cpu-1", True), ("cpu-2", False)],
            [("base", True), ("torch", False)],
        ),
        (
            [group("ml", "it:cpu-1")],
            ["it:cpu-1"],
            "ml",
            [("cpu-1", False)],
            [],
        ),  # own grant wins over global
        (
            [group("ml", "it:ghost", "img:ghost", "ds:ghost", "unrelated")],
            [],
            "ml",
            [],
            [],
        ),  # unknown roles
        (
            [group("ml", "it:cpu-2"), group("cv", "it:gpu-1")],
            [],
            "ml",
            [("cpu-2", False)],
            [],
        ),  # other groups don't leak
        (
            [group("ml", "img:building")],
            [],
            "ml",
            [],
            [("building", False)],
        ),  # not ready: offered, marked
    ],
    ids=["global-and-own", "own-wins", "unknown-roles", "no-leak", "not-ready"],
)
def test_instance_types_and_images(groups, global_roles, launch, instance_types, images):
    offer = resolve(context(*groups, global_roles=global_roles), launch, CATALOG)
    assert [(o.instance_type.name, o.global_) for o in offer.instance_types] == instance_types
    assert [(o.image.name, o.global_) for o in offer.images] == images


def test_prefixed_roles():
    offer = resolve(
        context(
            group("ml", "ph:it:cpu-2", "it:gpu-1", prefix="ph"),
            global_roles=["ph:img:base"],
            prefix="ph",
        ),
        "ml",
        CATALOG,
    )
    assert [o.instance_type.name for o in offer.instance_types] == ["cpu-2"]
    assert [o.image.name for o in offer.images] == ["base"]


def test_sorted_by_display_name():
    offer = resolve(
        context(group("ml", "img:sci", "img:base", "img:torch", "img:building")), "ml", CATALOG
    )
    assert [o.image.display_name for o in offer.images] == ["Base", "Building", "PyTorch", "SciPy"]


def test_not_in_group():
    assert resolve(context(group("ml")), "vision", CATALOG) is None
    assert (
        resolve(context(group("ml")), "everyone", CATALOG) is None
    )  # the global group is not a launch group


def mounts(offer):
    return {m.dataset.name: (m.writable, m.via) for m in offer.datasets}


@pytest.mark.parametrize(
    ("groups", "global_roles", "expected"),
    [
        (
            [group("ml", "ds:mnist")],
            ["ds:docs"],
            {"mnist": (False, "launch group"), "docs": (False, "global")},
        ),
        ([group("ml", "ds:rw:scratch")], [], {"scratch": (True, "launch group")}),
        ([group("ml", "ds:scratch", "ds:rw:scratch")], [], {"scratch": (True, "launch group")}),
        ([group("ml")], ["ds:rw:docs"], {"docs": (True, "global")}),
        (
            [group("ml", "ds:docs")],
            ["ds:rw:docs"],
            {"docs": (True, "launch group")},
        ),  # global rw counts
        (
            [group("ml"), group("cv", "ds:rw:shared")],
            [],
            {"shared": (False, "cv")},
        ),  # other group: read-only
        ([group("ml"), group("cv", "ds:mnist")], [], {}),  # launchGroupOnly keeps it out
        (
            [group("ml"), group("cv", "ds:legacy")],
            [],
            {"legacy": (False, "cv")},
        ),  # no annotation: not only
    ],
    ids=[
        "ro-and-global",
        "rw",
        "ro-plus-rw",
        "global-rw",
        "own-ro-global-rw",
        "other-group",
        "launch-group-only",
        "annotation-absent",
    ],
)
def test_datasets(groups, global_roles, expected):
    assert mounts(resolve(context(*groups, global_roles=global_roles), "ml", CATALOG)) == expected


def test_writability_does_not_depend_on_group_order():
    groups = [
        group("ml", "ds:shared"),
        group("cv", "ds:rw:shared"),
        group("nlp", "ds:shared", "ds:rw:docs"),
    ]
    results = set()
    for order in permutations(groups):
        for launch in ("ml", "cv", "nlp"):
            results.add(
                (
                    launch,
                    tuple(
                        sorted(
                            mounts(
                                resolve(context(*order, global_roles=["ds:docs"]), launch, CATALOG)
                            ).items()
                        )
                    ),
                )
            )
    by_launch = {}
    for launch, outcome in results:
        by_launch.setdefault(launch, set()).add(outcome)
    assert all(
        len(outcomes) == 1 for outcomes in by_launch.values()
    )  # one outcome per launch group
    assert dict(next(iter(by_launch["cv"])))["shared"] == (True, "launch group")
    assert dict(next(iter(by_launch["ml"])))["shared"] == (False, "launch group")


@pytest.mark.parametrize(
    ("instance_type", "image", "allowed", "warning"),
    [
        ("cpu-1", "base", True, False),
        ("cpu-1", "torch", False, False),
        ("gpu-1", "torch", True, False),
        ("gpu-1", "sci", True, True),
        ("gpu-1", "building", False, False),
    ],
)
def test_compatibility(instance_type, image, allowed, warning):
    result = compatibility(CATALOG.instance_types[instance_type], CATALOG.images[image])
    assert result.allowed is allowed
    assert bool(result.warning) is warning
    assert bool(result.reason) is not allowed


@pytest.mark.parametrize(
    ("cr", "message"),
    [
        (
            {"metadata": {"name": "x"}, "spec": {"limits": {"cpu": 1}}},
            "limits.cpu and limits.memory are required",
        ),
        (
            {"metadata": {"name": "x"}, "spec": {"limits": {"cpu": 1, "memory": "lots"}}},
            "not a Kubernetes quantity",
        ),
        (
            {"metadata": {"name": "x"}, "spec": {"limits": {"cpu": 0, "memory": "1G"}}},
            "limits must be positive",
        ),
        (
            {"metadata": {"name": "x"}, "spec": {"limits": {"cpu": 1, "memory": "1G", "gpu": -1}}},
            "whole number",
        ),
        ({"metadata": {"name": "x"}}, "no spec"),
    ],
)
def test_malformed_instance_types(cr, message):
    with pytest.raises(CatalogError, match=message):
        InstanceType.from_cr(cr)


def test_instance_type_details():
    parsed = InstanceType.from_cr(
        {
            "metadata": {"name": "gpu-x"},
            "spec": {
                "limits": {"cpu": 2, "memory": "2Gi", "nvidia.com/gpu": 1},
                "requests": {"cpu": 0.5, "memory": "1G"},
                "nodeSelector": {"gpu": "yes"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            },
        }
    )
    assert (parsed.cpu_limit, parsed.memory_limit, parsed.gpu, parsed.gpu_resource) == (
        2,
        2 * 2**30,
        1,
        "nvidia.com/gpu",
    )
    assert (parsed.cpu_request, parsed.memory_request) == (0.5, 10**9)
    amd = InstanceType.from_cr(
        {
            "metadata": {"name": "amd"},
            "spec": {
                "limits": {"cpu": 1, "memory": "1G", "gpu": 2},
                "gpuResourceName": "amd.com/gpu",
            },
        }
    )
    assert (amd.gpu, amd.gpu_resource) == (2, "amd.com/gpu")


def test_image_urls_and_dataset_kinds():
    both = img("x", "both")
    assert both.url_for(gpu=True) == "registry/x:1"
    gpu_variant = Image.from_cr({"metadata": {"name": "y"}, "spec": {"url": "a", "urlForGpu": "b"}})
    assert (gpu_variant.url_for(gpu=False), gpu_variant.url_for(gpu=True)) == ("a", "b")
    with pytest.raises(CatalogError, match="nfs needs a server"):
        Dataset.from_cr(
            {"metadata": {"name": "n"}, "spec": {"type": "nfs", "nfs": {"path": "relative"}}}
        )
    with pytest.raises(CatalogError, match="launchGroupOnly must be true or false"):
        Dataset.from_cr(
            {
                "metadata": {
                    "name": "n",
                    "annotations": {"dataset.primehub.io/launchGroupOnly": "y"},
                },
                "spec": {"type": "pv"},
            }
        )
    rooted = Dataset.from_cr(
        {
            "metadata": {"name": "n", "annotations": {"dataset.primehub.io/mountRoot": "/mnt/"}},
            "spec": {"type": "env", "variables": {"A": 1}},
        }
    )
    assert (rooted.mount_path, dict(rooted.variables)) == ("/mnt/n", {"A": "1"})
