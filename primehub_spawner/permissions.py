"""What a group may launch: the launch context's grants resolved against the catalog. Pure functions.

The rules, PrimeHub's with its order dependence removed:

- An instance type or image is offered when the launch group or the global group holds its role
  and the resource exists. ``global`` marks those granted only by the global group.
- A dataset is mounted when the launch group grants it, the global group grants it, or another of
  the user's groups grants it and the dataset is not ``launchGroupOnly``. It is writable only when
  the launch group or the global group grants ``ds:rw:<name>``; another group's rw grant never
  makes it writable here. The result is the same whatever order the groups come in.
- Images without a url are offered but not ready; GPU-only images need an instance type with GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog, Dataset, Image, InstanceType
from .context import Grants, GroupContext, LaunchContext


@dataclass(frozen=True)
class Offered:
    """A resource the group may use; ``global_`` when only the global group grants it."""

    global_: bool


@dataclass(frozen=True)
class OfferedInstanceType(Offered):
    instance_type: InstanceType


@dataclass(frozen=True)
class OfferedImage(Offered):
    image: Image

    @property
    def ready(self) -> bool:
        return self.image.ready


@dataclass(frozen=True)
class DatasetMount(Offered):
    dataset: Dataset
    writable: bool
    via: str  # "launch group", "global" or the name of the other group that grants it


@dataclass(frozen=True)
class GroupOffer:
    """Everything the user may choose from, and will get, when launching in ``group``."""

    group: GroupContext
    instance_types: tuple[OfferedInstanceType, ...]
    images: tuple[OfferedImage, ...]
    datasets: tuple[DatasetMount, ...]

    def instance_type(self, name: str) -> OfferedInstanceType | None:
        return next((o for o in self.instance_types if o.instance_type.name == name), None)

    def image(self, name: str) -> OfferedImage | None:
        return next((o for o in self.images if o.image.name == name), None)


def _sort_key(display_name: str, name: str) -> tuple[str, str]:
    return (display_name.casefold(), name)


def resolve(context: LaunchContext, group_name: str, catalog: Catalog) -> GroupOffer | None:
    """The offer for launching in ``group_name``; None when the user is not in that group."""
    group = context.group(group_name)
    if group is None:
        return None
    own = group.grants
    shared = context.global_group.grants if context.global_group else Grants()

    instance_types = [
        OfferedInstanceType(
            global_=name not in own.instance_types, instance_type=catalog.instance_types[name]
        )
        for name in own.instance_types | shared.instance_types
        if name in catalog.instance_types
    ]
    images = [
        OfferedImage(global_=name not in own.images, image=catalog.images[name])
        for name in own.images | shared.images
        if name in catalog.images
    ]
    return GroupOffer(
        group=group,
        instance_types=tuple(
            sorted(
                instance_types,
                key=lambda o: _sort_key(o.instance_type.display_name, o.instance_type.name),
            )
        ),
        images=tuple(sorted(images, key=lambda o: _sort_key(o.image.display_name, o.image.name))),
        datasets=tuple(_datasets(context, group, shared, catalog)),
    )


def _datasets(
    context: LaunchContext, group: GroupContext, shared: Grants, catalog: Catalog
) -> list[DatasetMount]:
    mounts = []
    for name in sorted(catalog.datasets):
        dataset = catalog.datasets[name]
        writable = group.grants.datasets.get(name, False) or shared.datasets.get(name, False)
        if name in group.grants.datasets:
            mounts.append(
                DatasetMount(global_=False, dataset=dataset, writable=writable, via="launch group")
            )
        elif name in shared.datasets:
            mounts.append(
                DatasetMount(global_=True, dataset=dataset, writable=writable, via="global")
            )
        elif not dataset.launch_group_only:
            others = sorted(
                g.name for g in context.groups if g.name != group.name and name in g.grants.datasets
            )
            if others:
                mounts.append(
                    DatasetMount(global_=False, dataset=dataset, writable=False, via=others[0])
                )
    return mounts


@dataclass(frozen=True)
class Compatibility:
    allowed: bool
    reason: str = ""
    warning: str = ""


def compatibility(instance_type: InstanceType, image: Image) -> Compatibility:
    """Whether ``image`` may run on ``instance_type`` (and a warning for a wasteful pairing)."""
    if not image.ready:
        return Compatibility(False, f"image {image.name} is not ready yet (it has no url)")
    if image.needs_gpu and not instance_type.has_gpu:
        return Compatibility(
            False, f"image {image.name} needs a GPU and instance type {instance_type.name} has none"
        )
    if instance_type.has_gpu and image.kind == "cpu":
        return Compatibility(
            True, warning="This instance type has a GPU, but the image may not be built to use it."
        )
    return Compatibility(True)
