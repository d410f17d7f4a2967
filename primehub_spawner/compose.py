"""From a decided launch choice to KubeSpawner settings. Pure functions, no I/O.

This part covers resources, scheduling, image, labels and the basic environment; each function
returns trait values for one concern, which the spawner applies to itself for this spawn only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kubespawner.slugs import is_valid_label, safe_slug

from .catalog import InstanceType
from .context import LaunchContext, reserved_env
from .options import LaunchChoice, OptionError
from .quota import GROUP_LABEL, USER_LABEL

NVIDIA_PREFIX = "nvidia.com/"


def label_value(name: str) -> str:
    """A valid label value for any user or group name (KubeSpawner's collision-free slug)."""
    return safe_slug(name, is_valid=is_valid_label, max_length=63)


def resources(instance_type: InstanceType) -> dict[str, Any]:
    """Limits from the instance type; requests only when it sets them (overcommit), else = limits."""
    settings: dict[str, Any] = {
        "cpu_limit": float(instance_type.cpu_limit),
        "mem_limit": int(instance_type.memory_limit),
        "cpu_guarantee": float(instance_type.cpu_request or instance_type.cpu_limit),
        "mem_guarantee": int(instance_type.memory_request or instance_type.memory_limit),
        "extra_resource_limits": {},
        "extra_resource_guarantees": {},
    }
    if instance_type.has_gpu:
        settings["extra_resource_limits"] = {instance_type.gpu_resource: str(instance_type.gpu)}
    return settings


def scheduling(
    instance_type: InstanceType,
    node_selector: Mapping[str, str],
    tolerations: list[Mapping[str, Any]],
    replace: bool,
) -> dict[str, Any]:
    """The instance type's node selector and tolerations, merged into (or replacing) the hub's."""
    if replace:
        selector = dict(instance_type.node_selector) or dict(node_selector)
        toleration_list = list(instance_type.tolerations) or list(tolerations)
    else:
        selector = {**node_selector, **instance_type.node_selector}
        toleration_list = list(tolerations) + [
            t for t in instance_type.tolerations if t not in tolerations
        ]
    return {"node_selector": selector, "tolerations": [dict(t) for t in toleration_list]}


def image(choice: LaunchChoice) -> dict[str, Any]:
    gpu = choice.instance_type.instance_type.has_gpu
    chosen = choice.image.image
    settings: dict[str, Any] = {"image": chosen.url_for(gpu)}
    if chosen.pull_secret:
        settings["image_pull_secrets"] = [chosen.pull_secret]
    return settings


def labels(username: str, group: str) -> dict[str, str]:
    return {USER_LABEL: label_value(username), GROUP_LABEL: label_value(group)}


def environment(
    choice: LaunchChoice,
    context: LaunchContext,
    username: str,
    datasets: dict[str, str] | None = None,
) -> dict[str, str]:
    """The user's rows, then what the hub sets: standard variables, the launch group's MLflow
    settings, env datasets. A user's row never replaces the hub's (``check_user_environment`` and
    the option parser refuse such rows; here the hub's value wins regardless)."""
    instance_type = choice.instance_type.instance_type
    group = choice.offer.group
    env = dict(choice.request.env)
    env |= {
        "TZ": context.user.timezone or "UTC",
        "GROUP_ID": group.id,
        "GROUP_NAME": group.name,
        "INSTANCE_TYPE": instance_type.name,
        "IMAGE_NAME": choice.image.image.name,
        "PRIMEHUB_USER": username,
        "PRIMEHUB_GROUP": group.name,
    }
    # Any NVIDIA resource (whole GPUs, MIG slices): the device plugin sets the visible devices.
    nvidia = instance_type.has_gpu and instance_type.gpu_resource.startswith(NVIDIA_PREFIX)
    if not nvidia:
        env["NVIDIA_VISIBLE_DEVICES"] = "none"
    mlflow = group.mlflow
    if mlflow is not None:
        if mlflow.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = mlflow.tracking_uri
        if mlflow.ui_url:
            env["MLFLOW_UI_URL"] = mlflow.ui_url
        for name, value in (*mlflow.tracking_envs, *mlflow.artifact_envs):
            if reserved_env(name) is None:  # a launch context stored before names were checked
                env[name] = value
    env.update(datasets or {})
    return env


def check_user_environment(
    choice: LaunchChoice, dataset_sources: Mapping[str, str], configured: Iterable[str] = ()
) -> None:
    """Refuse the user's variables that this launch sets itself: from the hub's configuration
    (``configured``: KubeSpawner's ``environment``), the launch group's MLflow settings or an env
    dataset (``dataset_sources``: variable → the dataset setting it). The hub's and the container
    runtimes' variables are refused earlier, whatever the launch."""
    group = choice.offer.group
    sources = dict.fromkeys(configured, "the hub's configuration") | dict(dataset_sources)
    mlflow = group.mlflow
    if mlflow is not None:
        own = [("MLFLOW_TRACKING_URI", mlflow.tracking_uri), ("MLFLOW_UI_URL", mlflow.ui_url)]
        for name, value in (*own, *mlflow.tracking_envs, *mlflow.artifact_envs):
            if value is not None:  # a URI the group does not set is the user's to set
                sources.setdefault(name, f"the MLflow settings of group {group.name}")
    for name, _ in choice.request.env:
        if name in sources:
            raise OptionError(
                f"env.{name}",
                f"is set for this launch by {sources[name]} and cannot be overridden",
            )


def usage_annotation(pod_name: str, username: str, choice: LaunchChoice) -> dict[str, str]:
    """PrimeHub's ``primehub.io/usage`` annotation, read by usage reports."""
    usage = {
        "component": "jupyter",
        "component_name": pod_name,
        "group": choice.group,
        "user": username,
        "instance_type": choice.instance_type.instance_type.name,
    }
    return {"primehub.io/usage": json.dumps(usage, sort_keys=True)}
