"""3. Form scale: the time to build the Server Options form (the group list, the selected group's
permissions against the catalog, quota usage, the Jinja2 template) for a user in 1, 10 and 50 groups,
with catalogs of 10, 100 and 500 resources (a third each instance types, images and datasets), and
the time to build one other group's part, fetched when the user switches to it. Each group is
granted a fixed random fifth of each kind; the global group two of each. In-process: pure CPU work
the hub does on every spawn-page view and group switch."""

from __future__ import annotations

import random
import time
from typing import Any

from primehub_spawner.catalog import Catalog, Dataset, Image, InstanceType
from primehub_spawner.context import GroupContext, LaunchContext, UserContext
from primehub_spawner.form import render, render_group
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


def _samples(work, budget: float = 0.4) -> list[float]:
    work()
    samples: list[float] = []
    spent = 0.0
    while len(samples) < 15 or (spent < budget and len(samples) < 200):
        started = time.perf_counter()
        work()
        elapsed = time.perf_counter() - started
        samples.append(elapsed)
        spent += elapsed
    return samples


def measure(groups: int, resources: int) -> tuple[list[float], list[float], int, int]:
    """Samples of the page's form and of one other group's part, and their sizes."""
    ctx, cat = context(groups, resources), catalog(resources)
    idle = GroupUsage(Usage(), Usage())
    other = ctx.groups[-1].name
    page = render(ctx, cat, lambda _group: idle)
    part = render_group(ctx, cat, lambda _group: idle, other) or ""
    return (
        _samples(lambda: render(ctx, cat, lambda _group: idle)),
        _samples(lambda: render_group(ctx, cat, lambda _group: idle, other)),
        len(page),
        len(part),
    )


async def run(stack: Stack | None = None) -> tuple[str, str]:
    del stack  # pure CPU work; no cluster needed
    rows: list[list[Any]] = []
    results: dict[tuple[int, int], float] = {}
    for groups in GROUPS:
        for resources in RESOURCES:
            page, part, page_size, part_size = measure(groups, resources)
            p50 = median(page) * 1000
            results[groups, resources] = p50
            rows.append(
                [
                    groups,
                    resources,
                    f"{p50:.2f} ms",
                    f"{page_size / 1024:.0f} KiB",
                    f"{median(part) * 1000:.2f} ms",
                    f"{part_size / 1024:.0f} KiB",
                ]
            )
    smallest, largest = results[GROUPS[0], RESOURCES[0]], results[GROUPS[-1], RESOURCES[-1]]
    by_groups = results[GROUPS[-1], RESOURCES[-1]] / results[GROUPS[0], RESOURCES[-1]]
    by_resources = results[GROUPS[-1], RESOURCES[-1]] / results[GROUPS[-1], RESOURCES[0]]
    report = "\n".join(
        [
            table(
                ["groups", "resources", "form p50", "form HTML", "switch p50", "group HTML"],
                rows,
            ),
            "",
            f"Growth of the form: ×{largest / smallest:.0f} from 1×10 to 50×500; ×{by_groups:.1f} for "
            f"50× the groups (at 500 resources: the group list), ×{by_resources:.1f} for 50× the "
            "resources (at 50 groups: the selected group's share). Only the selected group's part is "
            "rendered with the page; each other group's part is fetched when chosen, so both costs "
            "grow with what one group offers, not with groups × resources.",
            f"Target: ≤ {TARGET_MS:.0f} ms p50 at 50 groups × 500 resources — {'met' if largest <= TARGET_MS else 'missed'} "
            f"({largest:.1f} ms).",
        ]
    )
    key = f"form scale: p50 {smallest:.2f} ms at 1×10, {largest:.1f} ms at 50 groups × 500 resources (×{largest / smallest:.0f})"
    return report, key
