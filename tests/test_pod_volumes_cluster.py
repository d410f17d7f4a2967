"""Composed notebook pods on the real API server and local kubelet: what a notebook sees.

The stand-in notebook runs the ``PROBE`` env row (a shell script) before serving; probes write what
they find into the home volume, which the test reads from the claim's directory on the test ground.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from devstack.realms import group as realm_group
from devstack.testing import eventually
from tests.hub_stack import log_in, pods, realm_with, realm_with_twins

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
PROBING = ["/bin/sh", "-c", f'sh -c "$PROBE"; exec {sys.executable} -m http.server 8888']


async def claim_dir(kube, test_ground, namespace: str, claim: str) -> Path:
    async def bound() -> str | None:
        path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}"
        return (await kube.get(path))["spec"].get("volumeName")

    volume = await kube.get(f"/api/v1/persistentvolumes/{await eventually(bound, timeout=30)}")
    return test_ground.host_dir("hostpath", *Path(volume["spec"]["hostPath"]["path"]).parts[1:])


async def make_claim(kube, namespace: str, name: str) -> None:
    await kube.post(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )


async def run_probe(hub, kube, namespace, user: str, server: str, script: str, **options) -> dict:
    path = f"users/{user}/servers/{server}" if server else f"users/{user}/server"
    status, body = hub.api("POST", path, {"user_options": {**options, "env": {"PROBE": script}}})
    assert status in (201, 202), (status, body, hub.log()[-2000:])
    name = f"jupyter-{user}" + (f"--{server}" if server else "")

    async def running():
        found = [p for p in await pods(kube, namespace) if p["metadata"]["name"] == name]
        return found[0] if found and found[0]["status"].get("phase") == "Running" else None

    return await eventually(running, timeout=60)


async def stop(hub, kube, namespace, user: str, server: str = "") -> None:
    path = f"users/{user}/servers/{server}" if server else f"users/{user}/server"
    assert hub.api("DELETE", path)[0] in (202, 204)
    name = f"jupyter-{user}" + (f"--{server}" if server else "")

    async def gone():
        return all(p["metadata"]["name"] != name for p in await pods(kube, namespace))

    await eventually(gone, timeout=30)


@pytest.mark.reliability("isolation")
async def test_read_only_datasets_shared_group_volume_and_home(
    hub_factory, kube, namespace, test_ground
):
    await make_claim(kube, namespace, "project-ml-team")
    hub = hub_factory(cmd=PROBING)
    await log_in(hub, "alice", "bob")
    script = (
        "cd /home/jovyan; "
        "if touch /datasets/corpus/x 2>/dev/null; then echo writable; else echo read-only; fi > corpus.txt; "
        "echo hello-from-alice > /project/ml-team/note.txt; echo kept > keep.txt; "
        "sleep 1; ls -la /home/jovyan > links.txt"
    )
    await run_probe(hub, kube, namespace, "alice", "", script, group="ml-team")
    home = await claim_dir(kube, test_ground, namespace, "claim-alice")

    async def probed():
        return (home / "links.txt").exists()

    await eventually(probed, timeout=30)
    assert (home / "corpus.txt").read_text().strip() == "read-only"
    assert "ml-team -> /project/ml-team" in (home / "links.txt").read_text()
    assert "datasets -> /datasets" in (home / "links.txt").read_text()
    await run_probe(
        hub,
        kube,
        namespace,
        "bob",
        "",
        "cat /project/ml-team/note.txt > /home/jovyan/seen.txt",
        group="ml-team",
    )
    bob_home = await claim_dir(kube, test_ground, namespace, "claim-bob")
    await eventually(lambda: _exists(bob_home / "seen.txt"), timeout=30)
    assert (
        bob_home / "seen.txt"
    ).read_text().strip() == "hello-from-alice"  # one group volume, two members

    await stop(hub, kube, namespace, "alice")
    await run_probe(
        hub,
        kube,
        namespace,
        "alice",
        "",
        "ls /home/jovyan > /home/jovyan/user/top.txt; ls /home/jovyan/user > /home/jovyan/user/after.txt",
        group="ml-team",
        safe_mode=True,
    )
    await eventually(lambda: _exists(home / "after.txt"), timeout=30)
    assert "keep.txt" in (home / "after.txt").read_text()  # home persisted across stop and start
    # Safe mode: the home volume at /home/jovyan/user, the image's own home at /home/jovyan (where
    # the postStart hook may already have made its dataset and group links: it runs concurrently).
    top = (home / "top.txt").read_text().split()
    assert "user" in top and "keep.txt" not in top, top


async def _exists(path: Path) -> bool:
    return path.exists()


@pytest.mark.reliability("isolation")
async def test_phfs_folders_are_per_group(hub_factory, kube, namespace, test_ground):
    await make_claim(kube, namespace, "primehub-store")
    hub = hub_factory(cmd=PROBING)
    await log_in(hub, "alice", "carol")
    await run_probe(
        hub, kube, namespace, "alice", "", "echo secret > /phfs/ml-only.txt", group="ml-team"
    )
    store = await claim_dir(kube, test_ground, namespace, "primehub-store")
    await eventually(lambda: _exists(store / "groups" / "ml-team" / "ml-only.txt"), timeout=30)
    await run_probe(
        hub, kube, namespace, "carol", "", "ls -a /phfs > /home/jovyan/phfs.txt", group="vision"
    )
    carol_home = await claim_dir(kube, test_ground, namespace, "claim-carol")
    await eventually(lambda: _exists(carol_home / "phfs.txt"), timeout=30)
    assert "ml-only.txt" not in (carol_home / "phfs.txt").read_text()
    assert (store / "groups" / "vision").is_dir()


async def test_adversarial_names_pass_the_api_server(
    hub_factory, kube, namespace, test_ground, realm_factory
):
    from devstack.realms import add_user
    from primehub_spawner.naming import group_path_name

    weird_group = "Data_Science Ω Team"
    realm = realm_factory.variant()
    realm["groups"].append(
        {
            "name": weird_group,
            "path": f"/{weird_group}",
            "realmRoles": ["it:cpu-1", "ds:rw:scratch", "ds:imagenet-mini"],
            "attributes": {
                "enabled-shared-volume": ["true"],
                "shared-volume-capacity": ["1"],
                "launch-group-only": ["false"],
            },
        }
    )
    add_user(realm, "erin.o_brien", [f"/{weird_group}"])
    slug = group_path_name(weird_group)
    await make_claim(kube, namespace, f"project-{slug}")
    await make_claim(kube, namespace, "dataset-scratch")
    hub = hub_factory(realm, cmd=PROBING)
    await log_in(hub, "erin.o_brien")
    status, body = hub.api(
        "POST",
        "users/erin.o_brien/servers/lab-1",
        {
            "user_options": {
                "group": weird_group,
                "env": {
                    "PROBE": "touch /datasets/scratch/w && for d in /project/*; do touch $d/w || exit 1; done && echo ok > ~/ok"
                },
            }
        },
    )
    assert status in (201, 202), (body, hub.log()[-2000:])

    async def running():
        found = [p for p in await pods(kube, namespace) if p["status"].get("phase") == "Running"]
        return found[0] if found else None

    pod = await eventually(running, timeout=60)
    labels = pod["metadata"]["labels"]
    assert (
        labels["primehub.io/group"] != weird_group and labels["primehub.io/user"]
    )  # valid label values
    mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert f"/project/{slug}" in mounts and "readOnly" not in mounts["/datasets/scratch"]
    assert (
        mounts["/datasets/imagenet-mini"]["readOnly"] is True
    )  # hostPath, read-only without ds:rw
    home_claim = next(
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if v["name"] == "volume-home"
    )
    home = await claim_dir(kube, test_ground, namespace, home_claim)
    try:
        await eventually(
            lambda: _exists(home / "ok"), timeout=30
        )  # rw dataset and group volume writable
    except AssertionError:
        raise AssertionError(test_ground.pod_log(pod["metadata"]["uid"], "notebook")) from None


def group_data(pod: dict) -> set[str]:
    """The group claims and PHFS folders a pod spec mounts."""
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if v.get("persistentVolumeClaim", {}).get("claimName", "").startswith("project-")
    }
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    return claims | {f"phfs:{m['subPath']}" for m in mounts if m.get("subPath")}


@pytest.mark.reliability("isolation", cases=3)
async def test_groups_that_share_a_name_share_no_claim_folder_quota_or_hub_group(
    hub_factory, kube, namespace, realm_factory
):
    """bob (ml-team), erin (ML_Team) and frank (the subgroup /x/ml-team) each launch: PrimeHub
    named all three ml-team. No pod mounts project-ml-team or PHFS groups/ml-team (each launch says
    why), bob's CPU does not count in the quota of frank's group, and each group is its own
    JupyterHub group."""
    await make_claim(kube, namespace, "project-ml-team")
    await make_claim(kube, namespace, "primehub-store")
    hub = hub_factory(realm_with_twins(realm_factory))
    await log_in(hub, "bob", "erin", "frank")
    launched = {}
    for user, group in (("bob", "ml-team"), ("erin", "ML_Team"), ("frank", "ml-team")):
        # 1 CPU each; frank's group may use 1 CPU in all, which bob's pod must not take.
        options = {"user_options": {"group": group, "instance_type": "cpu-1"}}
        status, body = await asyncio.to_thread(hub.api, "POST", f"users/{user}/server", options)
        assert status in (201, 202), (user, status, body, hub.log()[-2000:])

        async def running(name=f"jupyter-{user}"):
            found = [p for p in await pods(kube, namespace) if p["metadata"]["name"] == name]
            return found[0] if found and found[0]["status"].get("phase") == "Running" else None

        pod = launched[user] = await eventually(running, timeout=60)
        assert group_data(pod) == set(), (user, group_data(pod))
        spec = str(pod["spec"])
        assert "project-ml-team" not in spec and "groups/ml-team" not in spec, user
    labels = {u: p["metadata"]["labels"]["primehub.io/group"] for u, p in launched.items()}
    assert len(set(labels.values())) == 3 and labels["bob"] == "ml-team", labels
    log = hub.log()  # the launch warnings, also shown in each spawn's progress
    for group, reason in (
        ("ml-team", "its name becomes 'ml-team' like another group's"),
        ("ML_Team", "its name becomes 'ml-team' like another group's"),
        ("ml-team", "it is a subgroup (/x/ml-team)"),
    ):
        for what in ("shared volume", "PHFS folder"):
            assert f"the {what} of group {group!r} is not mounted: {reason}" in log, log[-3000:]

    status, groups = hub.api("GET", "groups")
    members = {g["name"]: sorted(g["users"]) for g in groups}
    subgroup = next(name for name in members if name.startswith("/x/ml-team#"))
    assert members["ml-team"] == ["bob"] and members["ML_Team"] == ["erin"], members
    assert members[subgroup] == ["frank"], members
    status, found = hub.api("GET", f"groups/{quote(subgroup, safe='')}")
    assert (status, found["name"], found["users"]) == (200, subgroup, ["frank"])


async def test_a_users_servers_share_her_home(hub_factory, kube, namespace, test_ground):
    """One home per user (the default): a file her default server writes is read by her named
    server, inside the pods; the claim is hers, whichever server made it."""
    hub = hub_factory(cmd=PROBING)
    await log_in(hub, "alice")
    await run_probe(hub, kube, namespace, "alice", "", "echo from-the-first > ~/note")
    second = await run_probe(
        hub, kube, namespace, "alice", "gpu", "cat ~/note > ~/seen-by-gpu", group="ml-team"
    )
    home = next(v for v in second["spec"]["volumes"] if v["name"] == "volume-home")
    assert home["persistentVolumeClaim"]["claimName"] == "claim-alice"
    directory = await claim_dir(kube, test_ground, namespace, "claim-alice")

    async def seen():
        path = directory / "seen-by-gpu"
        return path.exists() and path.read_text() == "from-the-first\n"

    await eventually(seen, timeout=30, what="the named server reading the default server's file")


async def test_start_up_profiles_reach_the_server_and_a_failing_one_says_why(
    hub_factory, kube, namespace, test_ground
):
    await make_claim(kube, namespace, "project-ml-team")
    group_dir = await claim_dir(kube, test_ground, namespace, "project-ml-team")
    (group_dir / ".primehub").mkdir(parents=True)
    (group_dir / ".primehub" / "profile").write_text('export TEAM_SETTING="from the group"\n')
    (group_dir / ".primehub" / "alice.profile").write_text("export HALF=1\nif then\n")
    (group_dir / ".primehub" / "bob.profile").write_text("export BOBS=1\n")
    hub = hub_factory(cmd=PROBING)
    await log_in(hub, "alice")
    await run_probe(
        hub, kube, namespace, "alice", "", "env > /home/jovyan/env.txt", group="ml-team"
    )
    home = await claim_dir(kube, test_ground, namespace, "claim-alice")
    await eventually(lambda: _exists(home / "env.txt"), timeout=30)
    env = dict(
        line.split("=", 1) for line in (home / "env.txt").read_text().splitlines() if "=" in line
    )
    assert env["TEAM_SETTING"] == "from the group"
    assert env["PRIMEHUB_GROUP_VOLUME_PATH"] == "/project/ml-team"
    assert "BOBS" not in env and "HALF" not in env  # bob's profile; alice's broken one
    errors = (home / "primehub-profile-errors.log").read_text()
    assert "/project/ml-team/.primehub/alice.profile failed with status 2" in errors
    assert "Syntax error" in errors or "syntax error" in errors

    await stop(hub, kube, namespace, "alice")
    await run_probe(
        hub,
        kube,
        namespace,
        "alice",
        "",
        "env > /home/jovyan/user/safe-env.txt",
        group="ml-team",
        safe_mode=True,
    )
    await eventually(lambda: _exists(home / "safe-env.txt"), timeout=30)
    assert "TEAM_SETTING" not in (home / "safe-env.txt").read_text()  # safe mode skips them


WRITABLE_PROBE = """
cd /home/jovyan
for path in /home/jovyan /project/ml-team /datasets/scratch /datasets/corpus \\
            /datasets/imagenet-mini /phfs; do
  if touch "$path/.written-by-the-notebook-user" 2>/dev/null; then state=writable; else state=denied; fi
  echo "$path $state $(stat -c %u:%g "$path")"
done > writable.txt
echo "$(id -u):$(id -g)" > whoami.txt
if [ -e /etc/sudoers.d/primehub-notebook-user ]; then
  echo "$(cat /etc/sudoers.d/primehub-notebook-user) $(stat -c %u:%a /etc/sudoers.d/primehub-notebook-user)"
else echo none; fi > sudo.tmp
mv sudo.tmp sudo.txt
"""


@pytest.mark.reliability("isolation")
async def test_every_mount_she_may_write_is_writable_by_the_notebook_user(
    hub_factory, kube, namespace, test_ground, realm_factory
):
    """As uid 1000, on claims (fsGroup), NFS and hostPath (root-owned: the init container's
    chown); sudo only where the launch group grants it."""
    realm = realm_with(realm_factory, ml_team={"grant-sudo": "true"})
    granted = ["ds:rw:corpus", "ds:imagenet-mini", "ds:rw:imagenet-mini"]
    known = {role["name"] for role in realm["roles"]["realm"]}
    realm["roles"]["realm"] += [{"name": role} for role in granted if role not in known]
    realm_group(realm, "ml-team")["realmRoles"] += granted
    for claim in ("project-ml-team", "dataset-scratch", "primehub-store"):
        await make_claim(kube, namespace, claim)
    hub = hub_factory(realm, cmd=PROBING)
    await log_in(hub, "alice")
    pod = await run_probe(hub, kube, namespace, "alice", "", WRITABLE_PROBE, group="ml-team")
    home = await claim_dir(kube, test_ground, namespace, "claim-alice")
    await eventually(lambda: _exists(home / "sudo.txt"), timeout=30)
    assert (home / "whoami.txt").read_text().strip() == "1000:100"
    seen = {
        line.split()[0]: line.split()[1:]
        for line in (home / "writable.txt").read_text().splitlines()
    }
    assert seen == {
        path: ["writable", "1000:100"]
        for path in (
            "/home/jovyan",
            "/project/ml-team",
            "/datasets/scratch",
            "/datasets/corpus",  # nfs: kubelet leaves it root's
            "/datasets/imagenet-mini",  # hostPath: likewise
            "/phfs",
        )
    }, seen
    assert (home / "sudo.txt").read_text().split() == [
        "#1000",
        "ALL=(ALL)",
        "NOPASSWD:ALL",
        "0:440",
    ]
    notebook = pod["spec"]["containers"][0]
    assert notebook["securityContext"]["allowPrivilegeEscalation"] is True
    assert notebook["securityContext"]["runAsUser"] == 1000

    await stop(hub, kube, namespace, "alice")
    (home / "sudo.txt").unlink()
    pod = await run_probe(hub, kube, namespace, "alice", "", WRITABLE_PROBE, group="phusers")
    await eventually(lambda: _exists(home / "sudo.txt"), timeout=30)
    assert (home / "sudo.txt").read_text().strip() == "none"  # PH Users grants no sudo
    assert pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


OWNERS_PROBE = """
cd /home/jovyan
for path in /home/jovyan /project/ml-team; do
  if touch "$path/.written-by-the-notebook-user" 2>/dev/null; then state=writable; else state=denied; fi
  echo "$path $state $(stat -c %u:%g "$path")"
done > owners.tmp
mv owners.tmp owners.txt
"""


def _prepared_paths(pod: dict) -> list[str] | None:
    """The paths the pod's init container gives the notebook user; None without one."""
    found = [c for c in pod["spec"].get("initContainers") or () if c["name"] == "primehub-prepare"]
    return found[0]["args"][2:] if found else None


@pytest.mark.reliability("isolation")
async def test_a_claim_is_given_to_the_notebook_user_once_and_again_when_made_anew(
    hub_factory, kube, namespace, test_ground
):
    """The init container that chowns writable mounts runs only until each claim (by UID, and
    subPath) has been prepared by a launch that started; a claim deleted and made again under its
    name is another volume and is prepared again."""
    await make_claim(kube, namespace, "project-ml-team")
    hub = hub_factory(cmd=PROBING)
    await log_in(hub, "alice")
    home, launched = None, []
    for _ in range(3):
        pod = await run_probe(hub, kube, namespace, "alice", "", OWNERS_PROBE, group="ml-team")
        launched.append(_prepared_paths(pod))
        home = home or await claim_dir(kube, test_ground, namespace, "claim-alice")
        written = home / "owners.txt"
        await eventually(lambda written=written: _exists(written), timeout=30)
        owners = written.read_text().split()
        written.unlink()
        assert owners == [
            *("/home/jovyan", "writable", "1000:100"),
            *("/project/ml-team", "writable", "1000:100"),
        ], owners
        await stop(hub, kube, namespace, "alice")
    # the home claim is created by the first start, which reads its UID once the server runs
    assert launched == [["/home/jovyan", "/project/ml-team"], None, None], launched

    claim = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/project-ml-team"
    await kube.delete(claim)

    async def deleted():
        return await kube.get_or_none(claim) is None

    await eventually(deleted, timeout=30, what="project-ml-team deleted")
    await make_claim(kube, namespace, "project-ml-team")
    pod = await run_probe(hub, kube, namespace, "alice", "", OWNERS_PROBE, group="ml-team")
    assert _prepared_paths(pod) == ["/project/ml-team"]
    await eventually(lambda: _exists(home / "owners.txt"), timeout=30)
    owners = (home / "owners.txt").read_text().split()
    assert owners[3:] == ["/project/ml-team", "writable", "1000:100"], owners
