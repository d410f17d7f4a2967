"""The CRDs and the watch-based catalog cache against the real API server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest
import yaml

from devstack.cluster import audited
from devstack.kubeapi import ApiError, KubeAPI
from devstack.manifests import apply_file, install_crds
from devstack.testing import eventually
from primehub_spawner.context import Grants, GroupContext, LaunchContext, UserContext
from primehub_spawner.permissions import resolve
from primehub_spawner.reflector import CatalogCache

pytestmark = pytest.mark.cluster
RESOURCES = Path(__file__).resolve().parent.parent / "devstack" / "data" / "resources.yaml"
API = "/apis/primehub.io/v1alpha1/namespaces"


@pytest.fixture
async def crds(kube: KubeAPI, test_ground):
    await install_crds(kube)
    from kubespawner.clients import load_config

    load_config()  # what KubeSpawner does in its constructor, before any reflector


@pytest.fixture
async def cache(crds, namespace):
    cache = await CatalogCache.shared(namespace)
    yield cache
    await cache.stop()


async def test_crds_are_established_and_the_demo_resources_validate(kube, crds, namespace):
    created = await apply_file(kube, RESOURCES, namespace)
    assert len(created) == len([d for d in yaml.safe_load_all(RESOURCES.read_text()) if d])
    listing = await kube.get(f"{API}/{namespace}/instancetypes")
    assert sorted(i["metadata"]["name"] for i in listing["items"]) == ["cpu-1", "cpu-2", "gpu-1"]
    gpu = next(i for i in listing["items"] if i["metadata"]["name"] == "gpu-1")
    assert gpu["spec"]["idleTimeout"] == "30m"  # the CRD keeps the idle timeout


@pytest.mark.parametrize(
    ("plural", "spec", "fragment"),
    [
        ("instancetypes", {"displayName": "no limits"}, "spec.limits: Required value"),
        ("instancetypes", {"limits": {"cpu": -1, "memory": "1G"}}, "spec.limits.cpu"),
        ("instancetypes", {"limits": {"cpu": 1, "memory": "lots"}}, "spec.limits.memory"),
        (
            "instancetypes",
            {"limits": {"cpu": 1, "memory": "1G"}, "tolerations": [{"operator": "Maybe"}]},
            'spec.tolerations.operator: Unsupported value: "Maybe"',
        ),
        (
            "instancetypes",
            {"limits": {"cpu": 1, "memory": "1G"}, "idleTimeout": "soon"},
            "spec.idleTimeout",
        ),
        ("images", {"type": "tpu", "url": "x"}, "spec.type"),
        ("datasets", {"type": "s3"}, "spec.type"),
        ("datasets", {"type": "nfs", "nfs": {"server": "n", "path": "relative"}}, "spec.nfs.path"),
    ],
    ids=[
        "it-no-limits",
        "it-negative-cpu",
        "it-bad-memory",
        "it-bad-toleration",
        "it-bad-idle-timeout",
        "image-type",
        "dataset-type",
        "dataset-nfs-path",
    ],
)
async def test_bad_resources_are_rejected_by_the_schema(
    kube, crds, namespace, plural, spec, fragment
):
    kind = {"instancetypes": "InstanceType", "images": "Image", "datasets": "Dataset"}[plural]
    with pytest.raises(ApiError) as raised:
        await kube.post(
            f"{API}/{namespace}/{plural}",
            {
                "apiVersion": "primehub.io/v1alpha1",
                "kind": kind,
                "metadata": {"name": "bad"},
                "spec": spec,
            },
        )
    assert raised.value.status == 422
    assert fragment in raised.value.body["message"]


def offer_context(group_roles, global_roles=()):
    return LaunchContext(
        user=UserContext("u", "alice"),
        groups=(
            GroupContext(
                id="g", name="ml-team", display_name="ML", grants=Grants.from_roles(group_roles)
            ),
        ),
        global_group=GroupContext(
            id="e", name="everyone", display_name="Global", grants=Grants.from_roles(global_roles)
        ),
    )


async def test_the_cache_follows_create_update_delete_within_a_second(kube, cache, namespace):
    await apply_file(kube, RESOURCES, namespace)
    await eventually(
        lambda: _has(cache, "instance_types", "gpu-1"), timeout=1.0, what="gpu-1 in the cache"
    )
    body = {
        "apiVersion": "primehub.io/v1alpha1",
        "kind": "InstanceType",
        "metadata": {"name": "cpu-8"},
        "spec": {"displayName": "CPU 8", "limits": {"cpu": 8, "memory": "8G"}},
    }
    await kube.post(f"{API}/{namespace}/instancetypes", body)
    await eventually(lambda: _has(cache, "instance_types", "cpu-8"), timeout=1.0, what="created")
    await kube.patch(
        f"{API}/{namespace}/instancetypes/cpu-8", {"spec": {"displayName": "Eight cores"}}
    )

    async def renamed():
        item = cache.snapshot().instance_types.get("cpu-8")
        return item is not None and item.display_name == "Eight cores"

    await eventually(renamed, timeout=1.0, what="updated")
    await kube.delete(f"{API}/{namespace}/instancetypes/cpu-8")

    async def gone():
        return "cpu-8" not in cache.snapshot().instance_types

    await eventually(gone, timeout=1.0, what="deleted")
    assert cache.snapshot() is cache.snapshot()  # built once per change, not per request
    offer = resolve(
        offer_context(["it:cpu-2", "img:pytorch", "ds:mnist"], ["it:cpu-1", "ds:docs"]),
        "ml-team",
        cache.snapshot(),
    )
    assert [o.instance_type.name for o in offer.instance_types] == ["cpu-1", "cpu-2"]
    assert [(m.dataset.name, m.via) for m in offer.datasets] == [
        ("docs", "global"),
        ("mnist", "launch group"),
    ]


async def _has(cache: CatalogCache, attribute: str, name: str) -> bool:
    return name in getattr(cache.snapshot(), attribute)


async def test_a_malformed_resource_is_skipped_with_a_log_line(kube, cache, namespace, caplog):
    await apply_file(kube, RESOURCES, namespace)
    # Both pass the schema (annotations are free text; "0" is a quantity) but cannot be used.
    await kube.post(
        f"{API}/{namespace}/datasets",
        {
            "apiVersion": "primehub.io/v1alpha1",
            "kind": "Dataset",
            "metadata": {
                "name": "odd",
                "annotations": {"dataset.primehub.io/launchGroupOnly": "maybe"},
            },
            "spec": {"type": "pv"},
        },
    )
    await kube.post(
        f"{API}/{namespace}/instancetypes",
        {
            "apiVersion": "primehub.io/v1alpha1",
            "kind": "InstanceType",
            "metadata": {"name": "zero"},
            "spec": {"limits": {"cpu": 1, "memory": "0"}},
        },
    )
    await eventually(
        lambda: _raw(cache, "datasets", namespace, "odd"), timeout=2, what="odd reflected"
    )
    await eventually(
        lambda: _raw(cache, "instancetypes", namespace, "zero"), timeout=2, what="zero reflected"
    )
    with caplog.at_level(logging.WARNING, logger="primehub_spawner.catalog"):
        snapshot = cache.snapshot()
        cache.snapshot()  # logged once per version, not per read
    assert "odd" not in snapshot.datasets and "zero" not in snapshot.instance_types
    assert len(snapshot.datasets) == 7 and len(snapshot.instance_types) == 3
    skips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipping")]
    assert sorted(skips) == [
        f"Skipping datasets {namespace}/odd: Dataset odd: annotation dataset.primehub.io/launchGroupOnly must be "
        "true or false",
        f"Skipping instancetypes {namespace}/zero: InstanceType zero: limits must be positive",
    ]


async def _raw(cache: CatalogCache, kind: str, namespace: str, name: str) -> bool:
    return f"{namespace}/{name}" in cache.reflectors[kind].resources


def _lists(test_ground, namespace: str) -> int:
    events = test_ground.cluster.audit_events()
    return len(audited(events, "list", apiGroup="primehub.io", namespace=namespace))


async def test_no_list_calls_once_warm(kube, cache, namespace, test_ground):
    await apply_file(kube, RESOURCES, namespace)
    await eventually(lambda: _has(cache, "datasets", "imagenet-mini"), timeout=2, what="warm")
    warm = _lists(test_ground, namespace)
    assert warm >= 3  # the initial list of each kind is counted: the counter works
    context = offer_context(
        ["it:cpu-2", "img:pytorch", "ds:mnist"], ["it:cpu-1", "img:base-notebook"]
    )
    for _ in range(200):
        assert resolve(context, "ml-team", cache.snapshot()) is not None
    await asyncio.sleep(0.5)  # audit lines are written as requests complete
    assert _lists(test_ground, namespace) == warm


@pytest.mark.reliability("faults")
async def test_a_watch_that_gave_up_starts_over(kube, cache, namespace):
    await apply_file(kube, RESOURCES, namespace)
    await eventually(lambda: _has(cache, "instance_types", "gpu-1"), timeout=2, what="loaded")
    reflector = cache.reflectors["instancetypes"]
    # KubeSpawner's watch loop returns after about 50 s of failures, then calls on_failure.
    reflector.watch_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reflector.watch_task
    reflector.on_failure()
    body = {
        "apiVersion": "primehub.io/v1alpha1",
        "kind": "InstanceType",
        "metadata": {"name": "after-giving-up"},
        "spec": {"limits": {"cpu": 1, "memory": "1G"}},
    }
    await kube.post(f"{API}/{namespace}/instancetypes", body)
    await eventually(
        lambda: _has(cache, "instance_types", "after-giving-up"), timeout=10, what="the new watch"
    )
    await cache.stop()
    reflector.on_failure()  # a stopped cache stays stopped
    assert reflector.watch_task is None


async def test_a_quiet_catalog_is_not_listed_again_every_ten_seconds(cache, namespace, test_ground):
    """KubeSpawner's reflectors end their watch after 10 s and list everything again; the
    catalog's last 300 s (at 5,000 resources a list takes the hub's loop over half a second)."""
    assert {r.timeout_seconds for r in cache.reflectors.values()} == {300}
    assert {r.request_timeout for r in cache.reflectors.values()} == {330}  # outlasts the watch
    await asyncio.sleep(0.5)
    listed = _lists(test_ground, namespace)
    assert listed >= 3  # KubeSpawner's start lists each kind (twice): the counter works
    await asyncio.sleep(11)
    assert _lists(test_ground, namespace) == listed
