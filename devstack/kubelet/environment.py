"""A container's environment and command line, resolved as kubelet does."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from ..kubeapi import KubeAPI


class ContainerConfigError(Exception):
    """The container cannot be configured yet (CreateContainerConfigError), e.g. a missing secret."""


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes, unknown ones stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, value)


def _field(pod: Mapping[str, Any], path: str, pod_ip: str) -> str:
    meta = pod["metadata"]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    values = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": "127.0.0.1",
    }
    if path not in values:
        raise ContainerConfigError(f"unsupported fieldRef {path!r}")
    return values[path]


def _resource(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    kind, _, name = ref["resource"].partition(".")
    raw = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if raw is None:
        return "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(parse_quantity(raw) / divisor))


class ObjectCache:
    """Secrets and config maps of one namespace, fetched once per resolution."""

    def __init__(self, api: KubeAPI, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self._objects: dict[tuple[str, str], dict[str, str] | None] = {}

    async def data(self, kind: str, name: str) -> dict[str, str] | None:
        key = (kind, name)
        if key not in self._objects:
            plural = "secrets" if kind == "secret" else "configmaps"
            obj = await self.api.get_or_none(f"/api/v1/namespaces/{self.namespace}/{plural}/{name}")
            if obj is None:
                self._objects[key] = None
            elif kind == "secret":
                self._objects[key] = {
                    k: base64.b64decode(v).decode(errors="replace")
                    for k, v in (obj.get("data") or {}).items()
                }
            else:
                self._objects[key] = dict(obj.get("data") or {})
        return self._objects[key]

    async def key(self, kind: str, ref: Mapping[str, Any]) -> str | None:
        data = await self.data(kind, ref["name"])
        label = "secret" if kind == "secret" else "configmap"
        if data is None:
            if ref.get("optional"):
                return None
            raise ContainerConfigError(f'{label} "{ref["name"]}" not found')
        if ref["key"] not in data:
            if ref.get("optional"):
                return None
            raise ContainerConfigError(
                f"couldn't find key {ref['key']} in {label} {self.namespace}/{ref['name']}"
            )
        return data[ref["key"]]


async def container_env(
    api: KubeAPI,
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    pod_ip: str,
    image_env: Mapping[str, str],
) -> dict[str, str]:
    """image ENV, then envFrom, then env (in order, with $(VAR) expansion), as kubelet builds it."""
    objects = ObjectCache(api, pod["metadata"]["namespace"])
    env: dict[str, str] = {"HOSTNAME": pod["metadata"]["name"], **image_env}
    for source in container.get("envFrom") or ():
        prefix = source.get("prefix") or ""
        for kind, ref_key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(ref_key)
            if not ref:
                continue
            data = await objects.data(kind, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(
                    f'{"secret" if kind == "secret" else "configmap"} "{ref["name"]}" not found'
                )
            env.update({prefix + k: v for k, v in data.items()})
    for variable in container.get("env") or ():
        name = variable["name"]
        if "valueFrom" not in variable:
            env[name] = expand(variable.get("value") or "", env)
            continue
        source = variable["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            value = _field(pod, source["fieldRef"]["fieldPath"], pod_ip)
        elif "resourceFieldRef" in source:
            value = _resource(container, source["resourceFieldRef"])
        elif "secretKeyRef" in source:
            value = await objects.key("secret", source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = await objects.key("configmap", source["configMapKeyRef"])
        else:
            raise ContainerConfigError(f"env {name}: unsupported valueFrom")
        if value is not None:
            env[name] = value
    return env


def command_line(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """command + args with $(VAR) expansion; images have no ENTRYPOINT here, so args alone run."""
    argv = [
        expand(part, env)
        for part in (container.get("command") or []) + (container.get("args") or [])
    ]
    if not argv:
        raise ContainerConfigError(
            "no command specified (images of the local kubelet have no entrypoint)"
        )
    return argv
