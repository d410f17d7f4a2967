"""Quota admission for the spawner: what the user and her group use now (the pods the hub
watches plus spawns admitted whose pods are not seen yet), and the check-and-reserve of a launch.

The check and the reservation happen without an await in between, so concurrent launches can
never together pass a quota (:class:`primehub_spawner.quota.Ledger`).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from . import compose
from .context import GroupContext
from .lifecycle import ServerLifecycle
from .options import OptionError
from .outages import outage_is_503
from .quota import GroupUsage, Ledger, Usage, exceeded, gpu_resource_names, usage
from .reflector import CatalogCache


class QuotaAdmission(ServerLifecycle):
    """KubeSpawner that admits a launch only within its group's quotas."""

    ledger: ClassVar[Ledger] = Ledger()
    _starting: bool = False

    @property
    def _ledger_key(self) -> str:
        return f"{self.user.name}/{self.name}"

    async def _catalog_and_usage(self, doing: str) -> tuple[Any, Any]:
        """The catalog, and ``usage_of(group)`` from the pods the hub sees now."""
        with outage_is_503(doing):
            catalog = (await CatalogCache.shared(self.namespace)).snapshot()
            await self._start_watching_pods()
        gpu_names = gpu_resource_names(catalog.instance_types.values())
        usage_of = functools.partial(
            self._usage_of, pods=self._namespace_pods(), gpu_names=gpu_names
        )
        return catalog, usage_of

    def _namespace_pods(self) -> list[dict[str, Any]]:
        return [
            p
            for p in self.pod_reflector.pods.values()
            if p["metadata"]["namespace"] == self.namespace
        ]

    def _usage_of(
        self,
        group: GroupContext,
        gpu_names: frozenset[str],
        pods: list[dict[str, Any]] | None = None,
    ) -> GroupUsage:
        """What the user and the whole group use now: their counted pods plus spawns in flight
        (pods labelled with the group's key, which no other Keycloak group has)."""
        labels = compose.labels(self.user.name, group.key)
        user_label, group_label = labels[compose.USER_LABEL], labels[compose.GROUP_LABEL]
        pods = self._namespace_pods() if pods is None else pods
        seen = [p["metadata"]["name"] for p in pods]
        return GroupUsage(
            user=usage(pods, group_label, user_label, gpu_names)
            + self.ledger.pending(seen, group_label, user_label),
            group=usage(pods, group_label, None, gpu_names)
            + self.ledger.pending(seen, group_label),
        )

    def _admit(self, choice: Any, gpu_names: frozenset[str]) -> None:
        group = choice.offer.group
        wanted = Usage.of(choice.instance_type.instance_type)
        used = self._usage_of(group, gpu_names)
        over_user = exceeded(group.user_quota, used.user, wanted)
        if over_user:
            raise OptionError(
                "quota", f"your quota in group {group.name!r} would be exceeded — {over_user}"
            )
        over_group = exceeded(group.group_quota, used.group, wanted)
        if over_group:
            raise OptionError(
                "quota", f"the quota of group {group.name!r} would be exceeded — {over_group}"
            )
        labels = compose.labels(self.user.name, group.key)
        self.ledger.reserve(
            self._ledger_key,
            self.pod_name,
            labels[compose.USER_LABEL],
            labels[compose.GROUP_LABEL],
            wanted,
        )

    async def start(self) -> Any:
        self._starting = True
        try:
            return await super().start()
        finally:
            self._starting = False
            self.ledger.release(self._ledger_key)

    async def stop(self, now: bool = False) -> None:
        # KubeSpawner stops a pod left over from a create it tries again, in the middle of start():
        # the reservation then holds until start() ends, not until the old pod is gone.
        if not self._starting:
            self.ledger.release(self._ledger_key)
        await super().stop(now=now)
