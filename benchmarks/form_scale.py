"""3. Form scale: the time to build the Server Options form (permissions of every group against the
catalog, quota usage, the Jinja2 template) for a user in 1, 10 and 50 groups, with catalogs of 10,
100 and 500 resources (a third each instance types, images and datasets). Each group is granted a
fixed random fifth of each kind; the global group two of each. In-process: this is pure CPU work the
hub does on every spawn-page view."""

from __future__ import annotations

import random
import time
from typing import Any

from primehub_spawner.catalog import Catalog, Dataset, Image, InstanceType
from primehub_spawner.context import GroupContext, LaunchContext, UserContext
from primehub_spawner.form import render
from primehub_spawner.quota import GroupUsage, Usage

from .stack import Stack, median, table

GROUPS = (1, 10, 50)
RESOURCES = (10, 100, 500)
TARGET_MS = 20.0


def catalog(resources: int) -> Catalog:
    per_kind = max(1, resources // 3)
    types = [
        InstanceType.from_cr(
            {
                "metadata": {"name": f"type-{i}"},
                "spec": {
                    "displayName": f"Type {i} <small>",
                    "description": f"{i % 8 + 1} CPU & {i % 16 + 1} GB",
                    "limits": {
                        "cpu": i % 8 + 1,
                        "memory": f"{i % 16 + 1}G",
                        "nvidia.com/gpu": i % 2,
                    },
                },
            }
        )
        for i in range(per_kind)
    ]
    images = [
        Image.from_cr(
            {
                "metadata": {"name": f"image-{i}"},
                "spec": {
                    "displayName": f"Image {i}",
                    "type": ("cpu", "gpu", "both")[i % 3],
                    "url": f"registry/image-{i}:1",
                },
            }
        )
        for i in range(per_kind)
    ]
    datasets = [
        Dataset.from_cr(
            {
                "metadata": {
                    "name": f"data-{i}",
                    "annotations": {"dataset.primehub.io/launchGroupOnly": "true"},
                },
                "spec": {"displayName": f"Data {i}", "type": "pv", "volumeName": f"data-{i}"},
            }
        )
        for i in range(per_kind)
    ]
    return Catalog(
        instance_types={t.name: t for t in types},
        images={i.name: i for i in images},
        datasets={d.name: d for d in datasets},
    )


def context(groups: int, resources: int) -> LaunchContext:
    per_kind = max(1, resources // 3)
    chooser = random.Random(groups * 1000 + resources)

    def roles(share: float | int) -> list[str]:
        count = share if isinstance(share, int) else max(1, round(per_kind * share))
        picked = lambda: chooser.sample(range(per_kind), min(count, per_kind))  # noqa: E731
        return [
            *(f"it:type-{i}" for i in picked()),
            *(f"img:image-{i}" for i in picked()),
            *(f"ds:data-{i}" for i in picked()),
        ]

    def group(index: int, share: float | int) -> GroupContext:
        name = f"group-{index}"
        raw = {
            "id": name,
            "name": name,
            "path": f"/{name}",
            "attributes": {"displayName": [f"Group {index}"], "quota-cpu": ["64"]},
        }
        return GroupContext.build(raw, roles(share))

    return LaunchContext(
        user=UserContext("id", "alice"),
        groups=tuple(group(i, 0.2) for i in range(groups)),
        global_group=GroupContext.build(
            {"id": "g", "name": "everyone", "path": "/everyone"}, roles(2)
        ),
    )


def measure(groups: int, resources: int, budget: float = 0.4) -> tuple[list[float], int]:
    ctx, cat = context(groups, resources), catalog(resources)
    idle = GroupUsage(Usage(), Usage())
    html = render(ctx, cat, lambda _group: idle)
    samples: list[float] = []
    spent = 0.0
    while len(samples) < 15 or (spent < budget and len(samples) < 200):
        started = time.perf_counter()
        render(ctx, cat, lambda _group: idle)
        elapsed = time.perf_counter() - started
        samples.append(elapsed)
        spent += elapsed
    return samples, len(html)


async def run(stack: Stack | None = None) -> tuple[str, str]:
    del stack  # pure CPU work; no cluster needed
    rows: list[list[Any]] = []
    results: dict[tuple[int, int], float] = {}
    for groups in GROUPS:
        for resources in RESOURCES:
            samples, size = measure(groups, resources)
            p50 = median(samples) * 1000
            results[groups, resources] = p50
            rows.append(
                [
                    groups,
                    resources,
                    f"{p50:.2f} ms",
                    f"{size / 1024:.0f} KiB",
                    f"{p50 * 1e6 / size:.0f} ns/B",
                ]
            )
    smallest, largest = results[GROUPS[0], RESOURCES[0]], results[GROUPS[-1], RESOURCES[-1]]
    by_groups = results[GROUPS[-1], RESOURCES[-1]] / results[GROUPS[0], RESOURCES[-1]]
    by_resources = results[GROUPS[-1], RESOURCES[-1]] / results[GROUPS[-1], RESOURCES[0]]
    report = "\n".join(
        [
            table(["groups", "resources", "p50", "HTML", "time per byte of HTML"], rows),
            "",
            f"Growth: ×{largest / smallest:.0f} from 1×10 to 50×500; ×{by_groups:.1f} for 50× the groups "
            f"(at 500 resources), ×{by_resources:.1f} for 50× the resources (at 50 groups). The time per "
            "byte of output stays flat: the cost is linear in what the form shows.",
            f"Target: ≤ {TARGET_MS:.0f} ms p50 at 50 groups × 500 resources — {'met' if largest <= TARGET_MS else 'missed'} "
            f"({largest:.1f} ms).",
        ]
    )
    key = f"form scale: p50 {smallest:.2f} ms at 1×10, {largest:.1f} ms at 50 groups × 500 resources (×{largest / smallest:.0f})"
    return report, key
