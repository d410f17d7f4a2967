"""3. Form scale: the time to build the Server Options form (the group list, the selected group's
permissions against the catalog, quota usage, the Jinja2 template) for a user in 1, 10, 50 and 200
groups, with catalogs of 10, 100, 500 and 2,000 resources (a third each instance types, images and datasets), and
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

from .stack import Stack, Target, median, table

GROUPS = (1, 10, 50, 200)
RESOURCES = (10, 100, 500, 2000)
TARGET_MS = 20.0


def raw_resources(resources: int) -> dict[str, list[dict[str, Any]]]:
    """``resources`` custom resources, a third of each kind, as the API server holds them."""
    per_kind = max(1, resources // 3)
    return {
        "instancetypes": [
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
            for i in range(per_kind)
        ],
        "images": [
            {
                "metadata": {"name": f"image-{i}"},
                "spec": {
                    "displayName": f"Image {i}",
                    "type": ("cpu", "gpu", "both")[i % 3],
                    "url": f"registry/image-{i}:1",
                },
            }
            for i in range(per_kind)
        ],
        "datasets": [
            {
                "metadata": {
                    "name": f"data-{i}",
                    "annotations": {"dataset.primehub.io/launchGroupOnly": "true"},
                },
                "spec": {"displayName": f"Data {i}", "type": "pv", "volumeName": f"data-{i}"},
            }
            for i in range(per_kind)
        ],
    }


def catalog(resources: int) -> Catalog:
    raw = raw_resources(resources)
    types = [InstanceType.from_cr(r) for r in raw["instancetypes"]]
    images = [Image.from_cr(r) for r in raw["images"]]
    datasets = [Dataset.from_cr(r) for r in raw["datasets"]]
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


async def run(stack: Stack | None = None) -> tuple[str, str, list[Target]]:
    del stack  # pure CPU work; no cluster needed
    rows: list[list[Any]] = []
    results: dict[tuple[int, int], float] = {}
    sizes: dict[tuple[int, int], int] = {}
    for groups in GROUPS:
        for resources in RESOURCES:
            page, part, page_size, part_size = measure(groups, resources)
            p50 = median(page) * 1000
            results[groups, resources] = p50
            sizes[groups, resources] = page_size
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
    few, many = sizes[GROUPS[0], RESOURCES[0]], sizes[GROUPS[-1], RESOURCES[0]]
    per_group = (many - few) / (GROUPS[-1] - GROUPS[0])
    per_group_big = (sizes[GROUPS[-1], RESOURCES[-1]] - sizes[GROUPS[0], RESOURCES[-1]]) / (
        GROUPS[-1] - GROUPS[0]
    )
    size_holds = abs(per_group_big - per_group) <= 0.1 * per_group + 16
    scale = f"{GROUPS[-1]} groups × {RESOURCES[-1]:,} resources"
    report = "\n".join(
        [
            table(
                ["groups", "resources", "form p50", "form HTML", "switch p50", "group HTML"],
                rows,
            ),
            "",
            f"Growth of the form: ×{largest / smallest:.0f} from 1×10 to {scale}; "
            f"×{by_groups:.1f} for {GROUPS[-1]}× the groups (at {RESOURCES[-1]:,} resources), "
            f"×{by_resources:.1f} for {RESOURCES[-1] // RESOURCES[0]}× the resources (at "
            f"{GROUPS[-1]} groups: the selected group's share). Only the selected group's part is "
            "rendered with the page; each other group's part is fetched when chosen, so both costs "
            "grow with what one group offers, not with groups × resources. Each group adds "
            f"{per_group:.0f} bytes to the page at {RESOURCES[0]} resources and {per_group_big:.0f} "
            f"at {RESOURCES[-1]:,}: its entry in the group list, nothing of its resources.",
            f"Target: ≤ {TARGET_MS:.0f} ms p50 at {scale} — "
            f"{'met' if largest <= TARGET_MS else 'missed'} ({largest:.1f} ms).",
        ]
    )
    key = (
        f"form scale: p50 {smallest:.2f} ms at 1×10, {largest:.1f} ms at {scale} "
        f"(×{largest / smallest:.0f}); {per_group:.0f} bytes of page per group"
    )
    targets = [
        Target(
            f"options form, {scale}",
            f"≤ {TARGET_MS:.0f} ms p50",
            f"{largest:.1f} ms",
            largest <= TARGET_MS,
        ),
        Target(
            "options form page size as groups grow",
            "independent of the number of groups (beyond the group list)",
            f"+{per_group:.0f} bytes per group (its group-list entry) at {RESOURCES[0]} "
            f"resources, +{per_group_big:.0f} at {RESOURCES[-1]:,}",
            size_holds,
        ),
    ]
    return report, key, targets
