"""Pure scheduling decisions, following kube-scheduler 1.20's filters and messages.

Per node the filters run in the default plugin order (NodeUnschedulable, TaintToleration,
NodeAffinity, NodeResourcesFit) and stop at the first that fails, as kube-scheduler does; the event
message is its FitError text: "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s)
had taint {nvidia.com/gpu: present}, that the pod didn't tolerate."
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from .config import NodeSpec, Taint

Resources = dict[str, Decimal]
# Resources a node without a declared capacity does not account (no local-storage isolation here).
UNACCOUNTED = frozenset({"ephemeral-storage"})


@dataclass(frozen=True)
class Decision:
    node: str | None
    message: str = ""


def _container_requests(container: Mapping[str, Any]) -> Resources:
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = {**limits, **(resources.get("requests") or {})}  # requests default to limits
    return {name: parse_quantity(value) for name, value in requests.items()}


def pod_requests(spec: Mapping[str, Any]) -> Resources:
    """Effective requests: the sum over containers, or the largest init container if bigger."""
    total: Resources = Counter()
    for container in spec.get("containers") or ():
        total.update(_container_requests(container))
    for container in spec.get("initContainers") or ():
        for name, value in _container_requests(container).items():
            total[name] = max(total.get(name, Decimal(0)), value)
    result = dict(total)
    result["pods"] = Decimal(1)
    return result


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Taint) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.effect:
            continue
        operator = toleration.get("operator") or "Equal"
        key = toleration.get("key") or ""
        if operator == "Exists":
            if not key or key == taint.key:
                return True
        elif key == taint.key and (toleration.get("value") or "") == taint.value:
            return True
    return False


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values") or []
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        try:
            actual, bound = int(labels[key]), int(values[0])
        except (KeyError, IndexError, ValueError):
            return False
        return actual > bound if operator == "Gt" else actual < bound
    return False


def matches_node(spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """nodeSelector and requiredDuringSchedulingIgnoredDuringExecution node affinity."""
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    return any(
        all(_expression_matches(e, labels) for e in term.get("matchExpressions") or ())
        for term in terms
    )


def fit_failures(spec: Mapping[str, Any], node: NodeSpec, used: Mapping[str, Decimal]) -> list[str]:
    """The reasons ``node`` cannot take the pod (empty when it fits)."""
    if node.unschedulable and not tolerates(
        spec.get("tolerations") or (), Taint("node.kubernetes.io/unschedulable", "NoSchedule")
    ):
        return ["node(s) were unschedulable"]
    for taint in node.taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not tolerates(
            spec.get("tolerations") or (), taint
        ):
            return [
                f"node(s) had taint {{{taint.key}: {taint.value}}}, that the pod didn't tolerate"
            ]
    if not matches_node(spec, node.all_labels):
        return ["node(s) didn't match node selector"]
    allocatable = node.allocatable
    reasons = []
    for name, wanted in sorted(pod_requests(spec).items()):
        if wanted <= 0 or (name in UNACCOUNTED and name not in allocatable):
            continue
        if used.get(name, Decimal(0)) + wanted > allocatable.get(name, Decimal(0)):
            reasons.append("Too many pods" if name == "pods" else f"Insufficient {name}")
    return reasons


def unschedulable_message(node_count: int, reasons_per_node: Iterable[Iterable[str]]) -> str:
    histogram = Counter(reason for reasons in reasons_per_node for reason in reasons)
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    return f"0/{node_count} nodes are available: {', '.join(parts)}."


def _free_share(node: NodeSpec, used: Mapping[str, Decimal], extra: Resources) -> Decimal:
    """LeastAllocated score: the mean free share of cpu and memory after placing the pod."""
    allocatable = node.allocatable
    shares = []
    for name in ("cpu", "memory"):
        total = allocatable.get(name, Decimal(0))
        if total > 0:
            shares.append(
                (total - used.get(name, Decimal(0)) - extra.get(name, Decimal(0))) / total
            )
    return sum(shares, Decimal(0)) / len(shares) if shares else Decimal(0)


def schedule(
    spec: Mapping[str, Any], nodes: list[NodeSpec], used_by_node: Mapping[str, Resources]
) -> Decision:
    """Pick the fitting node with the most free cpu and memory (ties by name), or explain why none fits."""
    fitting, failures = [], []
    for node in nodes:
        reasons = fit_failures(spec, node, used_by_node.get(node.name, {}))
        if reasons:
            failures.append(reasons)
        else:
            fitting.append(node)
    if not fitting:
        return Decision(None, unschedulable_message(len(nodes), failures))
    requests = pod_requests(spec)
    best = min(
        fitting, key=lambda n: (-_free_share(n, used_by_node.get(n.name, {}), requests), n.name)
    )
    return Decision(best.name)


def volume_blocker(spec: Mapping[str, Any], claims: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The VolumeBinding pre-filter: a missing or unbound claim blocks the pod on every node."""
    unbound = False
    for volume in spec.get("volumes") or ():
        claim_ref = volume.get("persistentVolumeClaim")
        if not claim_ref:
            continue
        claim = claims.get(claim_ref["claimName"])
        if claim is None:
            return f'persistentvolumeclaim "{claim_ref["claimName"]}" not found'
        if (claim.get("status") or {}).get("phase") != "Bound":
            unbound = True
    return "pod has unbound immediate PersistentVolumeClaims" if unbound else None


def add_usage(total: Resources, spec: Mapping[str, Any]) -> None:
    for name, value in pod_requests(spec).items():
        total[name] = total.get(name, Decimal(0)) + value
