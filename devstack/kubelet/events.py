"""Kubernetes events, recorded the way kubelet and kube-scheduler record them (with aggregation)."""

from __future__ import annotations

import datetime
import logging
import secrets
from typing import Any

from ..kubeapi import UNREACHABLE, ApiError, KubeAPI

log = logging.getLogger("devstack.kubelet.events")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: dict[str, Any], field_path: str | None = None) -> dict[str, Any]:
    meta = obj["metadata"]
    reference = {
        "apiVersion": obj.get("apiVersion", "v1"),
        "kind": obj.get("kind", "Pod"),
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        reference["namespace"] = meta["namespace"]
    if field_path:
        reference["fieldPath"] = field_path
    return reference


class EventRecorder:
    """Posts events; a repeat of the same (object, reason, message) bumps the first one's count."""

    def __init__(self, api: KubeAPI, component: str, host: str | None = None) -> None:
        self.api = api
        self.component = component
        self.host = host
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int]] = {}

    async def record(
        self,
        obj: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        field_path: str | None = None,
        host: str | None = None,
    ) -> None:
        namespace = obj["metadata"].get("namespace") or "default"
        key = (obj["metadata"]["uid"], reason, message, field_path or "")
        timestamp = now()
        try:
            if key in self._seen:
                name, event_namespace, count = self._seen[key]
                await self.api.patch(
                    f"/api/v1/namespaces/{event_namespace}/events/{name}",
                    {"count": count + 1, "lastTimestamp": timestamp},
                )
                self._seen[key] = (name, event_namespace, count + 1)
                return
            source = {"component": self.component}
            if host or self.host:
                source["host"] = host or self.host
            name = f"{obj['metadata']['name']}.{secrets.token_hex(8)}"
            await self.api.post(
                f"/api/v1/namespaces/{namespace}/events",
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": object_reference(obj, field_path),
                    "reason": reason,
                    "message": message,
                    "type": event_type,
                    "source": source,
                    "reportingComponent": self.component,
                    "reportingInstance": source.get("host", ""),
                    "firstTimestamp": timestamp,
                    "lastTimestamp": timestamp,
                    "count": 1,
                },
            )
            self._seen[key] = (name, namespace, 1)
        except (ApiError, *UNREACHABLE) as error:
            # An event about an object in a namespace being deleted, or sent while the API server
            # is down, is not worth failing over.
            log.debug("event %s/%s not recorded: %s", reason, message, error)
            self._seen.pop(key, None)

    def forget(self, uid: str) -> None:
        for key in [k for k in self._seen if k[0] == uid]:
            del self._seen[key]
