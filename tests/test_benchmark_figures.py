"""The benchmarks' pure helpers: how a spawn is split at its pod's creation, paired ratios."""

from __future__ import annotations

import datetime

import pytest

from benchmarks.spawn_overhead import paired_ratio, pod_creations, to_creation

T0 = datetime.datetime(2026, 11, 28, 10, 0, 0, tzinfo=datetime.UTC)


def _event(seconds: float, **changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "verb": "create",
        "objectRef": {"resource": "pods", "namespace": "bench-0", "name": "jupyter-alice"},
        "responseStatus": {"code": 201},
        "requestReceivedTimestamp": (T0 + datetime.timedelta(seconds=seconds)).isoformat(),
    }
    event.update(changes)
    return event


def test_only_the_namespaces_answered_pod_creations_count():
    events = [
        _event(3.0),
        _event(1.0),
        _event(1.5, verb="get"),
        _event(1.6, responseStatus={"code": 409}),
        _event(1.7, objectRef={"resource": "pods", "namespace": "bench-plain"}),
        _event(1.8, objectRef={"resource": "persistentvolumeclaims", "namespace": "bench-0"}),
        _event(
            1.9, objectRef={"resource": "pods", "namespace": "bench-0", "subresource": "eviction"}
        ),
    ]
    start = T0.timestamp()
    assert pod_creations(events, "bench-0") == [start + 1.0, start + 3.0]


def test_each_post_is_matched_with_the_first_creation_after_it():
    assert to_creation([10.0, 20.0], [10.05, 19.0, 20.03]) == pytest.approx([0.05, 0.03])
    with pytest.raises(StopIteration):  # a spawn without its pod is not a figure
        to_creation([30.0], [10.05])


def test_paired_ratio_is_the_median_of_per_round_ratios():
    figure, low, high = paired_ratio([2.0, 3.0, 4.0], [1.0, 2.0, 4.0])
    assert figure == 1.5
    assert low <= figure <= high
    assert paired_ratio([2.0, 3.0, 4.0], [1.0, 2.0, 4.0]) == (figure, low, high)  # seeded
