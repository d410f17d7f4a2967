"""Watch-based caches of the three primehub.io kinds, and what the hub's watches share.

KubeSpawner's own ResourceReflector does the listing and watching (list once, watch from the list's
resourceVersion, relist after errors or 410 Gone, back off, restart watches periodically); here it
is pointed at CustomObjectsApi. Reading the catalog then costs no API call. Each CR is parsed once
per resourceVersion; one that cannot be parsed is logged once and left out. The catalog is built
once per change of what the watches hold, not at every spawn and form view (it is shared, and
read-only).

KubeSpawner's reflectors end each watch after ``timeout_seconds`` (10) and list everything again:
every 10 s the hub's loop decodes the whole catalog (with 5,000 resources, about as long as the
watch start-up: over half a second) and all the namespace's pod events (775 of them during a burst
of 100 spawns: half a second of the loop). The catalog and the events a spawn's progress shows
(:class:`SteadyEventReflector`) are watched for ``timeout_seconds`` = 300 instead, with
``request_timeout`` = 330 (the client's limit on the whole watch request, which must outlast it);
a connection that died silently is then noticed within 330 s. The pods stay KubeSpawner's: a
spawn waits on them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

from kubespawner.reflector import NamespacedResourceReflector, ResourceReflector
from kubespawner.spawner import EventReflector
from traitlets import Unicode, default, validate

from .catalog import GROUP, VERSION, Catalog, CatalogError, Dataset, Image, InstanceType

log = logging.getLogger("primehub_spawner.catalog")
KINDS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "instancetypes": InstanceType.from_cr,
    "images": Image.from_cr,
    "datasets": Dataset.from_cr,
}


STEADY_WATCH_SECONDS = 300


class SteadyWatch(ResourceReflector):
    """A reflector whose watches last ``timeout_seconds`` = 300 (KubeSpawner's: 10), each followed
    by a full list as KubeSpawner does."""

    @default("timeout_seconds")
    def _steady_timeout_seconds(self) -> int:
        return STEADY_WATCH_SECONDS

    @default("request_timeout")
    def _steady_request_timeout(self) -> int:
        return self.timeout_seconds + 30


class SteadyEventReflector(SteadyWatch, EventReflector):
    """KubeSpawner's event reflector (the progress of a spawn), with steady watches."""


class CustomResourceReflector(SteadyWatch, NamespacedResourceReflector):
    """KubeSpawner's reflector for one ``primehub.io/v1alpha1`` kind (``kind`` is its plural)."""

    api_group_name = Unicode("CustomObjectsApi")
    list_method_name = Unicode("list_namespaced_custom_object")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        method = partial(
            self.api.list_namespaced_custom_object, group=GROUP, version=VERSION, plural=self.kind
        )
        self.api = _BoundApi(method)
        self.on_failure = self._watch_again

    changes = 0  # bumped by every change to ``resources`` (a relist or a watch event)

    @validate("resources")
    def _counted(self, proposal: Any) -> ObservedDict:
        self.changes += 1
        return ObservedDict(proposal["value"], self._count)

    def _count(self, key: str) -> None:
        self.changes += 1

    def _watch_again(self) -> None:
        """KubeSpawner's reflector gives up after about 50 s of failures (for pods it then halts
        the hub); a catalog must not stay stale for good, so its watch starts over."""
        if self._stopping:
            return
        log.error("The %s watch gave up after repeated failures; starting it over", self.kind)
        self.watch_task = asyncio.ensure_future(self._watch_and_update())


class ObservedDict(dict):  # type: ignore[type-arg]
    """A reflector's resources that call ``on_change`` with the key of each change."""

    def __init__(self, items: Mapping[str, Any], on_change: Callable[[str], None]) -> None:
        super().__init__(items)
        self._on_change = on_change

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._on_change(key)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._on_change(key)

    def pop(self, key: str, *default: Any) -> Any:
        value = super().pop(key, *default)
        self._on_change(key)
        return value


class _BoundApi:
    """Looks like an API class to the reflector; lists one custom resource kind."""

    def __init__(self, method: Any) -> None:
        self.list_namespaced_custom_object = method


class CatalogCache:
    """The instance types, images and datasets of one namespace, kept current by watches."""

    _shared: ClassVar[dict[tuple[Any, str], CatalogCache]] = {}

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.reflectors = {
            kind: CustomResourceReflector(kind=kind, namespace=namespace) for kind in KINDS
        }
        self._parsed: dict[tuple[str, str], tuple[str, Any]] = {}
        self._built: tuple[tuple[int, ...], Catalog] | None = None

    @classmethod
    async def shared(cls, namespace: str) -> CatalogCache:
        """One started cache per namespace (and event loop), shared by every spawner."""
        key = (asyncio.get_running_loop(), namespace)
        cache = cls._shared.get(key)
        if cache is None:
            cache = cls._shared[key] = cls(namespace)
            try:
                await cache.start()
            except BaseException:
                del cls._shared[key]
                raise
        else:
            await asyncio.gather(*(r.first_load_future for r in cache.reflectors.values()))
        return cache

    async def start(self) -> None:
        await asyncio.gather(*(reflector.start() for reflector in self.reflectors.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(reflector.stop() for reflector in self.reflectors.values()))
        for key, cache in list(self._shared.items()):
            if cache is self:
                del self._shared[key]

    def snapshot(self) -> Catalog:
        """The current catalog; malformed resources are left out (and logged once per version)."""
        changes = tuple(self.reflectors[kind].changes for kind in KINDS)
        if self._built is not None and self._built[0] == changes:
            return self._built[1]
        catalog = self._build()
        self._built = (changes, catalog)
        return catalog

    def _build(self) -> Catalog:
        parsed: dict[str, dict[str, Any]] = {}
        kept: dict[tuple[str, str], tuple[str, Any]] = {}  # a deleted resource's model goes
        for kind, parse in KINDS.items():
            models = parsed[kind] = {}
            for key, resource in list(self.reflectors[kind].resources.items()):
                version = resource["metadata"].get("resourceVersion", "")
                cached = self._parsed.get((kind, key))
                if cached is None or cached[0] != version:
                    try:
                        model = parse(resource)
                    except CatalogError as error:
                        log.warning("Skipping %s %s: %s", kind, key, error)
                        model = None
                    cached = (version, model)
                kept[(kind, key)] = cached
                if cached[1] is not None:
                    models[cached[1].name] = cached[1]
        self._parsed = kept
        return Catalog(
            instance_types=parsed["instancetypes"],
            images=parsed["images"],
            datasets=parsed["datasets"],
        )
