"""Volume composition: every volume type and option, PrimeHub's names and paths, adversarial names."""

import re
import shlex

import pytest

from primehub_spawner.catalog import Catalog, Dataset
from primehub_spawner.context import Grants, GroupContext, LaunchContext, SharedVolume, UserContext
from primehub_spawner.options import LaunchRequest, decide
from primehub_spawner.volumes import VolumeSettings, compose_volumes, group_path_name, link_command
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


def group(name, *roles, shared=None):
    return GroupContext(name, name, name, shared_volume=shared, grants=Grants.from_roles(roles))


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
    assert pod.env == {"ML_ENV_BATCH_SIZE": "32", "ML_ENV_LR": "0.1"}
    assert pod.env_sources == dict.fromkeys(pod.env, "dataset ml-env")
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


def test_phfs_shm_and_safe_mode():
    pod = volumes_for("ml", group("ml"), safe_mode=True)
    assert mounts(pod)["/phfs"]["subPath"] == "groups/ml"
    assert volume(pod, "/phfs")["persistentVolumeClaim"] == {"claimName": "primehub-store"}
    assert volume(pod, "/dev/shm")["emptyDir"] == {"medium": "Memory"}
    assert pod.env["PRIMEHUB_SAFE_MODE_ENABLED"] == "true"
    plain = volumes_for("ml", group("ml"), settings=VolumeSettings(phfs_claim=None, shm=False))
    assert plain.mounts == [] and plain.volumes == []


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
    weird = [
        group(n, shared=SharedVolume("1Gi", launch_group_only=False))
        for n in ("ML Team", "ml_team", "ml-team", "Ω" * 70, "a" * 200)
    ]
    pod = volumes_for("ML Team", *weird)
    names = [v["name"] for v in pod.volumes]
    assert len(names) == len(set(names)) and all(DNS_LABEL.match(n) for n in names)
    assert len({m["mountPath"] for m in pod.mounts}) == len(pod.mounts)
    assert pod.warnings == [
        "the shared volume of group 'ml-team' is not mounted: its name collides with group 'ml_team' "
        "(project-ml-team)"
    ]


def test_link_command_quotes_names():
    command = link_command([("/project/a", '/home/jovyan/x"; rm -rf / #')])
    assert command[:2] == ["/bin/sh", "-c"]
    assert shlex.quote('/home/jovyan/x"; rm -rf / #') in command[2]
    assert link_command([]) is None
