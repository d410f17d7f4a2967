"""6. Catalog scale: catalogs of 500, 2,500 and 5,000 custom resources (a third each instance types,
images and datasets) in the API server. For each, the hub's catalog cache (the three watches) is
started as the hub starts it, in this process: the time until all three have listed, the memory it
then holds (tracemalloc, in a second start: tracing slows the first), the time to take a snapshot
of the catalog (done on every spawn and form view; each resource is parsed once per version) and
to render the form for a user whose group may use a fifth of each kind."""

from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc
from typing import Any

from kubernetes_asyncio.config import kube_config
from kubespawner.clients import load_config

from devstack.manifests import install_crds
from primehub_spawner.catalog import GROUP, VERSION
from primehub_spawner.form import render
from primehub_spawner.quota import GroupUsage, Usage
from primehub_spawner.reflector import CatalogCache

from .form_scale import _samples, context, raw_resources
from .stack import Stack, Target, median, table

SIZES = (500, 2500, 5000)
_KIND = {"instancetypes": "InstanceType", "images": "Image", "datasets": "Dataset"}


async def _fill(stack: Stack, namespace: str, resources: int) -> None:
    gate = asyncio.Semaphore(16)
    async with stack.kube() as kube:
        await install_crds(kube)
        await kube.post("/api/v1/namespaces", {"metadata": {"name": namespace}})

        async def one(kind: str, body: dict[str, Any]) -> None:
            async with gate:
                await kube.post(
                    f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind}",
                    {"apiVersion": f"{GROUP}/{VERSION}", "kind": _KIND[kind], **body},
                )

        await asyncio.gather(
            *(
                one(kind, body)
                for kind, bodies in raw_resources(resources).items()
                for body in bodies
            )
        )


async def _measure(namespace: str, resources: int) -> dict[str, float]:
    started = time.perf_counter()
    cache = CatalogCache(namespace)
    await cache.start()
    startup = time.perf_counter() - started
    catalog = cache.snapshot()
    assert len(catalog.instance_types) + len(catalog.images) + len(catalog.datasets) == (
        resources // 3 * 3
    ), "the cache did not list every resource"
    ctx = context(1, resources)
    idle = GroupUsage(Usage(), Usage())
    snapshot = median(_samples(cache.snapshot)) * 1000
    form = median(_samples(lambda: render(ctx, cache.snapshot(), lambda _group: idle))) * 1000
    await cache.stop()

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    traced = CatalogCache(namespace)
    await traced.start()
    traced.snapshot()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    await traced.stop()
    return {"startup": startup, "memory": held, "snapshot": snapshot, "form": form}


async def run(stack: Stack) -> tuple[str, str, list[Target]]:
    os.environ["KUBECONFIG"] = str(stack.ground.kubeconfig)
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(stack.ground.kubeconfig)  # read at import
    load_config()
    results = {}
    for resources in SIZES:
        namespace = f"bench-catalog-{resources}"
        await _fill(stack, namespace, resources)
        results[resources] = await _measure(namespace, resources)

    rows = [
        [
            f"{resources:,}",
            f"{r['startup'] * 1000:.0f} ms",
            f"{r['startup'] * 1e6 / resources:.0f} µs",
            f"{r['memory'] / 1024**2:.1f} MiB",
            f"{r['memory'] / resources / 1024:.1f} KiB",
            f"{r['snapshot'] * 1000:.1f} µs",
            f"{r['form']:.2f} ms",
        ]
        for resources, r in results.items()
    ]
    small, large = results[SIZES[0]], results[SIZES[-1]]
    growth = SIZES[-1] / SIZES[0]

    def ratio(measure: str) -> float:
        return large[measure] / small[measure]

    linear = all(ratio(m) <= 1.5 * growth for m in ("startup", "memory", "form"))
    report = "\n".join(
        [
            table(
                [
                    "resources",
                    "watch start-up",
                    "per resource",
                    "memory",
                    "per resource",
                    "snapshot p50",
                    "form p50",
                ],
                rows,
            ),
            "",
            f"From {SIZES[0]:,} to {SIZES[-1]:,} resources (×{growth:.0f}): start-up "
            f"×{ratio('startup'):.1f}, memory ×{ratio('memory'):.1f}, form ×{ratio('form'):.1f} — "
            f"{'linear or better' if linear else 'worse than linear'}. A snapshot is built once per "
            "change of the watched resources, so taking one costs the same at any size. The "
            "start-up is one list "
            "call per kind (then watches); the memory is the listed resources as KubeSpawner's "
            "reflector keeps them plus one parsed model each. The form renders the group's fifth "
            "of each kind.",
        ]
    )
    key = (
        f"catalog scale: {SIZES[-1]:,} resources → watch start-up {large['startup'] * 1000:.0f} ms, "
        f"{large['memory'] / 1024**2:.1f} MiB, snapshot {large['snapshot'] * 1000:.1f} µs, form "
        f"{large['form']:.1f} ms; ×{ratio('startup'):.1f} / ×{ratio('memory'):.1f} / "
        f"×{ratio('form'):.1f} for ×{growth:.0f} the resources"
    )
    targets = [
        Target(
            f"catalog of {SIZES[-1]:,} resources: watch start-up, memory, form render",
            "reported; linear",
            f"{large['startup'] * 1000:.0f} ms, {large['memory'] / 1024**2:.1f} MiB, "
            f"{large['form']:.1f} ms; ×{ratio('startup'):.1f}, ×{ratio('memory'):.1f}, "
            f"×{ratio('form'):.1f} for ×{growth:.0f}",
            linear,
        )
    ]
    return report, key, targets
