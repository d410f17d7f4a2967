"""Volume composition: every volume type and option, PrimeHub's names and paths, adversarial names."""

import re
import shlex

import pytest
from kubespawner.slugs import is_valid_label

from primehub_spawner import compose
from primehub_spawner.catalog import Catalog, Dataset
from primehub_spawner.claims import drop_missing
from primehub_spawner.context import Grants, GroupContext, LaunchContext, SharedVolume, UserContext
from primehub_spawner.naming import HUB_NAME_LIMIT, TopLevelGroups, group_key, group_path_name
from primehub_spawner.options import LaunchRequest, decide
from primehub_spawner.volumes import VolumeSettings, compose_volumes, link_command
from tests.test_permissions import CATALOG

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def dataset(name, kind, annotations=None, **spec):
    return Dataset.from_cr(
        {
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"type": kind, **spec},
        }
    )


DATASETS = {
    d.name: d
    for d in (
        dataset("mnist", "pv", volumeName="mnist-v1"),
        dataset("scratch", "pv", {"dataset.primehub.io/homeSymlink": "true"}),
        dataset("corpus", "nfs", nfs={"server": "nfs.example", "path": "/exports/corpus"}),
        dataset(
            "imagenet",
            "hostPath",
            {"dataset.primehub.io/mountRoot": "/data/"},
            hostPath={"path": "/srv/imagenet"},
        ),
        dataset("recipes", "git", url="https://example.org/r.git"),
        dataset("ml-env", "env", variables={"batch-size": "32", "lr": "0.1", "bad key!": "x"}),
        dataset("nvidia", "env", variables={"visible_devices": "all"}),
        dataset("jupyterhub", "env", variables={"api_url": "http://evil.example"}),
    )
}
CAT = Catalog(instance_types=CATALOG.instance_types, images=CATALOG.images, datasets=DATASETS)


def context(*groups):
    return LaunchContext(
        user=UserContext("u", "alice"),
        groups=tuple(groups),
        global_group=GroupContext(
            "e", "everyone", "Global", grants=Grants.from_roles(["it:cpu-1", "img:base"])
        ),
    )


def group(name, *roles, shared=None, path=None, realm=None):
    """A group as a login builds it: ``path`` defaults to a top-level group's; ``realm`` lists the
    realm's top-level groups (id -> name; ids are paths here), by default this group alone."""
    path = path or f"/{name}"
    if realm is None:
        realm = {path: name} if path == f"/{name}" else {}
    return GroupContext(
        path,
        name,
        name,
        shared_volume=shared,
        grants=Grants.from_roles(roles),
        path=path,
        volume_name=TopLevelGroups(realm).volume_name(path, name, path),
    )


def volumes_for(launch, *groups, settings=None, safe_mode=False):
    settings = settings or VolumeSettings()
    ctx = context(*groups)
    choice = decide(LaunchRequest(group=launch), ctx, CAT)
    return compose_volumes(choice, ctx, settings, safe_mode)


def mounts(pod):
    return {m["mountPath"]: m for m in pod.mounts}


def volume(pod, mount_path):
    name = mounts(pod)[mount_path]["name"]
    return next(v for v in pod.volumes if v["name"] == name)


def test_every_dataset_type():
    pod = volumes_for("ml", group("ml", *(f"ds:{n}" for n in DATASETS), "ds:rw:scratch"))
    by_path = mounts(pod)
    assert volume(pod, "/datasets/mnist")["persistentVolumeClaim"] == {
        "claimName": "dataset-mnist-v1",
        "readOnly": True,
    }
    assert by_path["/datasets/mnist"]["readOnly"] is True
    assert volume(pod, "/datasets/scratch")["persistentVolumeClaim"] == {
        "claimName": "dataset-scratch"
    }
    assert "readOnly" not in by_path["/datasets/scratch"]  # ds:rw
    assert volume(pod, "/datasets/corpus")["nfs"] == {
        "server": "nfs.example",
        "path": "/exports/corpus",
        "readOnly": True,
    }
    assert volume(pod, "/data/imagenet")["hostPath"] == {"path": "/srv/imagenet"}
    assert volume(pod, "/gitsync/recipes")["hostPath"] == {"path": "/home/dataset/recipes"}
    assert by_path["/gitsync/recipes"]["readOnly"] is True
    assert ("/gitsync/recipes/recipes", "/datasets/recipes") in pod.links
    assert ("/datasets/scratch", "/home/jovyan/scratch") in pod.links  # homeSymlink
    assert ("/datasets", "/home/jovyan/datasets") in pod.links and (
        "/data",
        "/home/jovyan/data",
    ) in pod.links
    assert pod.env == {
        "ML_ENV_BATCH_SIZE": "32",
        "ML_ENV_LR": "0.1",
        "PRIMEHUB_PHFS_PATH": "/phfs",
    }
    assert pod.env_sources == dict.fromkeys(["ML_ENV_BATCH_SIZE", "ML_ENV_LR"], "dataset ml-env")
    assert sorted(pod.warnings) == [
        "dataset jupyterhub: variable 'api_url' was left out: JUPYTERHUB_API_URL is set by the "
        "hub and cannot be overridden",
        "dataset ml-env: variable 'bad key!' is not a valid name and was left out",
        "dataset nvidia: variable 'visible_devices' was left out: NVIDIA_VISIBLE_DEVICES is "
        "reserved: container runtimes read it to choose the devices a server gets",
    ]
    assert set(pod.claims) == {"dataset-mnist-v1", "dataset-scratch", "primehub-store"}


def test_group_volumes_follow_launch_group_only():
    ml = group("ml", shared=SharedVolume("1Gi", home_symlink=True, launch_group_only=True))
    open_group = group(
        "Data_Team", shared=SharedVolume("1Gi", home_symlink=False, launch_group_only=False)
    )
    closed = group("cv", shared=SharedVolume("1Gi", launch_group_only=True))
    pod = volumes_for("ml", ml, open_group, closed)
    assert volume(pod, "/project/ml")["persistentVolumeClaim"] == {"claimName": "project-ml"}
    assert volume(pod, "/project/data-team")["persistentVolumeClaim"] == {
        "claimName": "project-data-team"
    }
    assert "/project/cv" not in mounts(pod)
    assert ("/project/ml", "/home/jovyan/ml") in pod.links
    assert not any(link == "/home/jovyan/data-team" for _, link in pod.links)
    assert (
        pod.env["PRIMEHUB_GROUP_VOLUME_PATH"] == "/project/ml"
    )  # the launch group's, for profiles
    elsewhere = volumes_for("Data_Team", ml, open_group, closed)
    assert elsewhere.env["PRIMEHUB_GROUP_VOLUME_PATH"] == "/project/data-team"


def test_the_start_up_paths_go_with_their_volumes_when_a_claim_is_missing():
    pod = volumes_for("ml", group("ml", shared=SharedVolume("1Gi")))
    assert {pod.env["PRIMEHUB_GROUP_VOLUME_PATH"], pod.env["PRIMEHUB_PHFS_PATH"]} == {
        "/project/ml",
        "/phfs",
    }
    drop_missing(pod, {"project-ml", "primehub-store"})
    assert "PRIMEHUB_GROUP_VOLUME_PATH" not in pod.env and "PRIMEHUB_PHFS_PATH" not in pod.env


def test_phfs_shm_and_safe_mode():
    pod = volumes_for("ml", group("ml"), safe_mode=True)
    assert mounts(pod)["/phfs"]["subPath"] == "groups/ml"
    assert volume(pod, "/phfs")["persistentVolumeClaim"] == {"claimName": "primehub-store"}
    assert volume(pod, "/dev/shm")["emptyDir"] == {"medium": "Memory"}
    assert pod.env["PRIMEHUB_SAFE_MODE_ENABLED"] == "true"
    plain = volumes_for("ml", group("ml"), settings=VolumeSettings(phfs_claim=None, shm=False))
    assert plain.mounts == [] and plain.volumes == []
    assert "PRIMEHUB_PHFS_PATH" not in plain.env


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ml-team", "ml-team"),
        ("Data_Science", "data-science"),
        ("ML Team", None),
        ("日本語", None),
        ("x" * 80, None),
    ],
)
def test_group_path_names(name, expected):
    slug = group_path_name(name)
    assert DNS_LABEL.match(slug) and len(slug) <= 50
    if expected:
        assert slug == expected


def test_adversarial_names_give_valid_unique_volume_names():
    names = ("ML Team", "ml_team", "ml-team", "Ω" * 70, "a" * 200)
    realm = {f"/{n}": n for n in names}
    weird = [
        group(n, shared=SharedVolume("1Gi", launch_group_only=False), realm=realm) for n in names
    ]
    pod = volumes_for("ML Team", *weird)
    volume_names = [v["name"] for v in pod.volumes]
    assert len(volume_names) == len(set(volume_names))
    assert all(DNS_LABEL.match(n) for n in volume_names)
    assert len({m["mountPath"] for m in pod.mounts}) == len(pod.mounts)
    assert len([m for m in pod.mounts if m["mountPath"].startswith("/project/")]) == 3
    # ml_team and ml-team both become project-ml-team: neither is mounted, in any user's pod.
    assert pod.warnings == [
        f"the shared volume of group {n!r} is not mounted: its name becomes 'ml-team' like another "
        "group's (names are lower-cased and '_' becomes '-'), so the volume would be shared"
        for n in ("ml_team", "ml-team")
    ]


def test_a_volume_colliding_within_one_users_groups_is_mounted_once():
    """The second guard, for contexts whose names were decided apart (e.g. at different logins)."""
    shared = SharedVolume("1Gi", launch_group_only=False)
    pod = volumes_for("ml_team", group("ml_team", shared=shared), group("ml-team", shared=shared))
    assert [m["mountPath"] for m in pod.mounts if m["mountPath"].startswith("/project/")] == [
        "/project/ml-team"
    ]
    assert pod.warnings == [
        "the shared volume of group 'ml-team' is not mounted: its name collides with group "
        "'ml_team' (project-ml-team)"
    ]


def test_link_command_quotes_names():
    command = link_command([("/project/a", '/home/jovyan/x"; rm -rf / #')])
    assert command[:2] == ["/bin/sh", "-c"]
    assert shlex.quote('/home/jovyan/x"; rm -rf / #') in command[2]
    assert link_command([]) is None


# -- groups that share a name (issue 17, item 7) ---------------------------------------------------
# A realm is its top-level groups as Keycloak lists them: id -> name.


@pytest.mark.parametrize(
    ("realm", "group_id", "name", "path", "expected"),
    [
        pytest.param({"m": "ml-team"}, "m", "ml-team", "/ml-team", "ml-team", id="unambiguous"),
        pytest.param(
            {"m": "ml-team", "x": "x"}, "m", "ml-team", "/ml-team", "ml-team", id="beside-subgroup"
        ),
        pytest.param({"m": "ml-team", "x": "x"}, "s", "ml-team", "/x/ml-team", None, id="subgroup"),
        pytest.param(
            {"a": "ML_Team", "m": "ml-team"}, "a", "ML_Team", "/ML_Team", None, id="ML_Team"
        ),
        pytest.param(
            {"a": "ML_Team", "m": "ml-team"}, "m", "ml-team", "/ml-team", None, id="its-twin"
        ),
        pytest.param({"a": "ml-Team", "m": "ml-team"}, "m", "ml-team", "/ml-team", None, id="case"),
        pytest.param(
            {"a": "ML Team", "b": "ml team"}, "a", "ML Team", "/ML Team", None, id="slugs"
        ),
        pytest.param(
            {"a": "ml.team", "m": "ml-team"}, "m", "ml-team", "/ml-team", "ml-team", id="distinct"
        ),
        pytest.param({"a": "x/ml-team", "x": "x"}, "s", "ml-team", "/x/ml-team", None, id="slash"),
        pytest.param({}, "m", "ml-team", "/ml-team", None, id="not-listed"),
        pytest.param({"m": "old-name"}, "m", "ml-team", "/ml-team", None, id="renamed"),
        pytest.param({"m": "ml-team"}, "m", "ml-team", None, None, id="stored-without-path"),
    ],
)
def test_a_group_keeps_primehubs_name_only_when_it_is_its_own(
    realm, group_id, name, path, expected
):
    assert TopLevelGroups(realm).volume_name(group_id, name, path) == expected


def launch_pod(realm, group_id, name, path):
    """A user whose only group is this one launches in it: her pod's volumes."""
    own = GroupContext(
        group_id,
        name,
        name,
        shared_volume=SharedVolume("1Gi"),
        grants=Grants.from_roles(["it:cpu-1"]),
        path=path,
        volume_name=TopLevelGroups(realm).volume_name(group_id, name, path),
    )
    ctx = context(own)
    return compose_volumes(decide(LaunchRequest(group=name), ctx, CAT), ctx)


def group_data(pod):
    """The group claims and PHFS folders a pod reaches."""
    claims = {c for c in pod.claims if c.startswith("project-")}
    return claims | {f"phfs:{m['subPath']}" for m in pod.mounts if "subPath" in m}


@pytest.mark.parametrize(
    ("realm", "first", "second"),
    [
        pytest.param(
            {"a": "ML_Team", "m": "ml-team"},
            ("a", "ML_Team", "/ML_Team"),
            ("m", "ml-team", "/ml-team"),
            id="ML_Team-and-ml-team",
        ),
        pytest.param(
            {"a": "ml-Team", "m": "ml-team"},
            ("a", "ml-Team", "/ml-Team"),
            ("m", "ml-team", "/ml-team"),
            id="case-only",
        ),
        pytest.param(
            {"x": "x", "m": "ml-team"},
            ("s", "ml-team", "/x/ml-team"),
            ("m", "ml-team", "/ml-team"),
            id="subgroup-and-top-level",
        ),
        pytest.param(
            {"x": "x", "y": "y"},
            ("s", "ml-team", "/x/ml-team"),
            ("t", "ml-team", "/y/ml-team"),
            id="two-subgroups",
        ),
        pytest.param(
            {"x": "x", "a": "x/ml-team"},
            ("s", "ml-team", "/x/ml-team"),
            ("a", "x/ml-team", "/x/ml-team"),
            id="same-path",
        ),
    ],
)
@pytest.mark.reliability("isolation")
def test_groups_that_share_a_name_share_no_data_across_users(realm, first, second):
    one, other = launch_pod(realm, *first), launch_pod(realm, *second)
    assert not group_data(one) & group_data(other)
    for pod, (_, name, _) in ((one, first), (other, second)):
        if not group_data(pod):  # left out, and the launch says why
            assert any(
                w.startswith(f"the PHFS folder of group {name!r} is not") for w in pod.warnings
            )
            assert any(
                w.startswith(f"the shared volume of group {name!r} is not") for w in pod.warnings
            )
    # Their quota labels and JupyterHub groups are apart too.
    keys = [GroupContext(i, n, n, path=p).key for i, n, p in (first, second)]
    assert keys[0] != keys[1]
    labels = [compose.labels("alice", key)[compose.GROUP_LABEL] for key in keys]
    assert labels[0] != labels[1] and all(is_valid_label(v) for v in labels)


def test_an_unambiguous_group_keeps_primehubs_names():
    pod = launch_pod({"m": "ml-team", "x": "x"}, "m", "ml-team", "/ml-team")
    assert group_data(pod) == {"project-ml-team", "phfs:groups/ml-team"}
    assert mounts(pod)["/project/ml-team"]["name"] == "project-ml-team" and not pod.warnings
    assert GroupContext("m", "ml-team", "ml-team", path="/ml-team").key == "ml-team"
    assert compose.labels("alice", "ml-team")[compose.GROUP_LABEL] == "ml-team"


@pytest.mark.parametrize(
    ("group_id", "name", "path", "expected"),
    [
        ("m", "ml-team", "/ml-team", "ml-team"),  # top-level: its name, unique among them
        ("s", "ml-team", "/x/ml-team", "/x/ml-team#s"),
        ("a", "x/ml-team", "/x/ml-team", "x/ml-team"),  # a top-level name without a leading /
        ("l", "/lead", "//lead", "//lead#l"),  # could look like a subgroup's key: keyed alike
        ("m", "ml-team", None, "ml-team"),  # stored before paths were kept
    ],
)
def test_group_keys(group_id, name, path, expected):
    assert group_key(group_id, name, path) == expected


def test_a_long_paths_key_fits_jupyterhub_and_keeps_the_id():
    group_id = "0" * 36
    key = group_key(group_id, "leaf", "/" + "deep/" * 80 + "leaf")
    assert len(key) == HUB_NAME_LIMIT and key.endswith(f"#{group_id}")


def test_a_launch_context_stored_without_paths_mounts_no_group_data():
    stored = GroupContext.from_dict(
        {"id": "m", "name": "ml-team", "shared_volume": {"capacity": "1Gi"}}
    )
    assert (stored.path, stored.volume_name, stored.key) == (None, None, "ml-team")
    ctx = context(stored)
    pod = compose_volumes(decide(LaunchRequest(group="ml-team"), ctx, CAT), ctx)
    assert group_data(pod) == set()
    assert pod.warnings[-1] == (
        "the PHFS folder of group 'ml-team' is not mounted: the stored launch context predates "
        "group paths; log in again"
    )
    kept = GroupContext("m", "ml-team", "ml-team", path="/ml-team", volume_name="ml-team")
    assert GroupContext.from_dict(kept.to_dict()) == kept


def test_a_launch_group_only_volume_stays_with_its_group_when_a_subgroup_has_its_name():
    """Launching in the subgroup /x/ml-team does not mount the top-level ml-team's volume, which
    is for launches in ml-team only (groups are told apart by id, not name)."""
    only = SharedVolume("1Gi", launch_group_only=True)
    subgroup = group("ml-team", path="/x/ml-team", shared=only)
    top = group("ml-team", shared=only)
    pod = volumes_for("ml-team", subgroup, top)  # the subgroup comes first: the launch group
    assert not any(c.startswith("project-") for c in pod.claims), pod.claims
