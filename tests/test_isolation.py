"""Isolation between groups, over every option combination: with the demo realm and resources, no
launch request of a member of one group yields another group's volume, datasets, PHFS folder or
environment — whatever group, instance type, image and safe mode she asks for. Pure functions; the
same pods on the local kubelet are checked in test_pod_volumes_cluster.py and test_e2e_demo.py."""

from __future__ import annotations

import itertools
import json

import pytest
import yaml

from devstack.ground import DATA_DIR
from devstack.realms import demo_realm
from primehub_spawner.catalog import Catalog, Dataset, Image, InstanceType
from primehub_spawner.context import GroupContext, LaunchContext, UserContext
from primehub_spawner.naming import TopLevelGroups
from primehub_spawner.options import OptionError, decide, parse_user_options
from primehub_spawner.volumes import VolumeSettings, compose_volumes

REALM = demo_realm()
KINDS = {"InstanceType": InstanceType, "Image": Image, "Dataset": Dataset}
OBJECTS = [o for o in yaml.safe_load_all((DATA_DIR / "resources.yaml").read_text()) if o]
CATALOG = Catalog(
    **{
        field: {
            o["metadata"]["name"]: KINDS[o["kind"]].from_cr(o) for o in OBJECTS if o["kind"] == kind
        }
        for field, kind in (
            ("instance_types", "InstanceType"),
            ("images", "Image"),
            ("datasets", "Dataset"),
        )
    }
)
# What belongs to one group only, as it would appear in a pod spec.
OWN = {
    "vision": ["imagenet-mini", "project-vision", "groups/vision", "/project/vision"],
    "ml-team": [
        "dataset-mnist",
        "dataset-scratch",
        "nfs.example.org",
        "recipes",
        "ML_ENV_",
        "project-ml-team",
        "groups/ml-team",
        "/project/ml-team",
    ],
}


# The demo realm's top-level groups as Keycloak lists them (id -> name; the name as id here).
TOP_LEVEL = TopLevelGroups({g["name"]: g["name"] for g in REALM["groups"]})


def _group(name: str) -> GroupContext:
    raw = next(g for g in REALM["groups"] if g["name"] == name)
    return GroupContext.build(
        {"id": name, "name": name, "path": f"/{name}", "attributes": raw.get("attributes", {})},
        raw["realmRoles"],
        volume_name=TOP_LEVEL.volume_name(name, name, f"/{name}"),
    )


def _context(username: str) -> LaunchContext:
    user = next(u for u in REALM["users"] if u["username"] == username)
    groups = [g.strip("/") for g in user.get("groups", []) if g != "/everyone"]
    return LaunchContext(
        user=UserContext(username, username),
        groups=tuple(_group(g) for g in groups),
        global_group=_group("everyone"),
    )


GROUP_NAMES = ["phusers", "ml-team", "vision", "everyone", "ML-Team", "ml_team", None]
TYPES = [*CATALOG.instance_types, "nope", None]
IMAGES = [*CATALOG.images, None]
COMBINATIONS = len(GROUP_NAMES) * len(TYPES) * len(IMAGES) * 2  # safe mode off and on


@pytest.mark.parametrize(
    ("username", "foreign"), [("alice", "vision"), ("carol", "ml-team"), ("dave", "ml-team")]
)
@pytest.mark.reliability("isolation", cases=COMBINATIONS)
def test_no_option_combination_reaches_another_groups_data(username, foreign):
    context = _context(username)
    launched = refused = 0
    for group, instance_type, image, safe_mode in itertools.product(
        GROUP_NAMES, TYPES, IMAGES, (False, True)
    ):
        options = {"safe_mode": safe_mode}
        for key, value in (("group", group), ("instance_type", instance_type), ("image", image)):
            if value is not None:
                options[key] = value
        try:
            choice = decide(parse_user_options(options), context, CATALOG)
        except OptionError:
            refused += 1
            continue
        launched += 1
        assert choice.group in {g.name for g in context.groups}
        pod = compose_volumes(choice, context, VolumeSettings(), safe_mode)
        spec = json.dumps([pod.volumes, pod.mounts, pod.env, pod.links, sorted(pod.claims)])
        for marker in OWN[foreign]:
            assert marker not in spec, (options, marker)
    assert refused > 0
    assert launched > 0 or not context.groups


@pytest.mark.reliability("isolation")
def test_read_only_unless_granted_read_write():
    context = _context("alice")
    choice = decide(parse_user_options({"group": "ml-team"}), context, CATALOG)
    mounts = {
        m["mountPath"]: m.get("readOnly", False)
        for m in compose_volumes(choice, context, VolumeSettings(), False).mounts
    }
    assert mounts["/datasets/scratch"] is False  # ds:rw:scratch
    assert all(mounts[p] for p in ("/datasets/mnist", "/datasets/docs", "/datasets/corpus"))


@pytest.mark.parametrize(("username", "group"), [("alice", "ml-team"), ("carol", "vision")])
def test_the_markers_are_there_for_the_groups_own_members(username, group):
    """The control: the same markers do show up in a launch by a member, so their absence above means
    something."""
    context = _context(username)
    choice = decide(parse_user_options({"group": group}), context, CATALOG)
    pod = compose_volumes(choice, context, VolumeSettings(), False)
    spec = json.dumps([pod.volumes, pod.mounts, pod.env, pod.links, sorted(pod.claims)])
    present = [marker for marker in OWN[group] if marker in spec]
    assert len(present) >= 2, present  # vision has no shared volume
