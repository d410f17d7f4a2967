"""The start-up script (run here by the system's /bin/sh) and the init container that prepares mounts."""

import json
import subprocess

import pytest

from primehub_spawner import startup

SHOW = ["/bin/sh", "-c", 'printf "%s\\n" "$@"; env', "server"]


def run(tmp_path, files=None, user="alice", profiles=True, **env):
    group_dir, home = tmp_path / "project" / "ml-team", tmp_path / "home"
    (group_dir / ".primehub").mkdir(parents=True)
    home.mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        (group_dir / ".primehub" / name).write_text(text)
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(tmp_path),
        "PRIMEHUB_USER": user,
        "PRIMEHUB_GROUP_VOLUME_PATH": str(group_dir),
        **env,
    }
    command = startup.start_command([*SHOW, "--arg with space"], profiles=profiles)
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    arguments = done.stdout.partition("\n")[0]
    errors = home / startup.PROFILE_ERRORS
    return (
        arguments,
        dict(line.split("=", 1) for line in done.stdout.splitlines()[1:] if "=" in line),
        done.stderr,
        errors.read_text() if errors.exists() else None,
    )


def test_the_group_profile_then_the_users_reach_the_server(tmp_path):
    arguments, env, log, errors = run(
        tmp_path,
        {
            "profile": 'export TEAM_DATA="s3://bucket/it\'s $PRIMEHUB_USER"\nexport ORDER=group\necho hi',
            "alice.profile": "export ORDER=user\n",
            "bob.profile": "export BOB=1\n",
        },
    )
    assert arguments == "--arg with space"
    assert env["TEAM_DATA"] == "s3://bucket/it's alice" and env["ORDER"] == "user"
    assert "BOB" not in env
    assert "profile: hi" in log and errors is None


@pytest.mark.parametrize(
    "broken", ["if then\n", "export HALF=1\nexit 3\n", "export LAST=1\nfalse\n"]
)
def test_a_failing_profile_does_not_stop_the_server_and_says_why(tmp_path, broken):
    _, env, log, errors = run(tmp_path, {"profile": "export GOOD=1\n", "alice.profile": broken})
    assert env["GOOD"] == "1"  # the server started, with the good profile's variables
    assert "alice.profile failed with status" in log
    assert "alice.profile failed with status" in errors
    if "false" in broken:
        assert env["LAST"] == "1"  # a profile that ran to its end keeps its exports


def test_safe_mode_skips_the_profiles(tmp_path):
    _, env, log, _ = run(
        tmp_path, {"profile": "export GROUP_SET=1\n"}, PRIMEHUB_SAFE_MODE_ENABLED="true"
    )
    assert "GROUP_SET" not in env and "safe mode" in log


def test_profiles_can_be_turned_off(tmp_path):
    _, env, _, _ = run(tmp_path, {"profile": "export GROUP_SET=1\n"}, profiles=False)
    assert "GROUP_SET" not in env


def test_a_user_name_is_never_code(tmp_path):
    name = "a|e$(touch pwned)'\"`touch pwned2`"
    _, env, _, errors = run(tmp_path, {f"{name}.profile": "export MINE=1\n"}, user=name)
    assert env["MINE"] == "1" and errors is None
    assert not list(tmp_path.rglob("pwned*"))


def test_a_clean_start_removes_the_last_errors(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / startup.PROFILE_ERRORS).write_text("old")
    _, _, _, errors = run(tmp_path, {"profile": "export FINE=1\n"})
    assert errors is None


def test_kernel_culling_is_configured_for_jupyter_server(tmp_path):
    _, env, _, _ = run(
        tmp_path, PRIMEHUB_KERNEL_IDLE_TIMEOUT="600", PRIMEHUB_KERNEL_CULL_INTERVAL="60"
    )
    directory = env["JUPYTER_CONFIG_PATH"].split(":")[0]
    config = json.loads((tmp_path / directory / "jupyter_server_config.json").read_text())
    assert config == {
        "MappingKernelManager": {
            "cull_idle_timeout": 600,
            "cull_interval": 60,
            "cull_connected": True,
        }
    }


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"PRIMEHUB_HUB_AUTH_CACHE_MAX_AGE": "0"}, {"HubOAuth": {"cache_max_age": 0}}),
        (
            {"PRIMEHUB_KERNEL_IDLE_TIMEOUT": "60", "PRIMEHUB_HUB_AUTH_CACHE_MAX_AGE": "30"},
            {
                "MappingKernelManager": {
                    "cull_idle_timeout": 60,
                    "cull_interval": 60,
                    "cull_connected": True,
                },
                "HubOAuth": {"cache_max_age": 30},
            },
        ),
    ],
)
def test_the_servers_hub_auth_cache_is_configured(tmp_path, variables, expected):
    _, env, _, _ = run(tmp_path, **variables)
    directory = env["JUPYTER_CONFIG_PATH"].split(":")[0]
    assert json.loads((tmp_path / directory / "jupyter_server_config.json").read_text()) == expected


def test_a_start_runs_no_program_but_mkdir_before_the_server(tmp_path):
    """Each program the script runs is a fork and an exec before the server starts; with no
    profiles and no errors to remove, the shell's built-ins do all but the config directory."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "mkdir").symlink_to("/bin/mkdir")
    environ = {
        "PATH": str(tools),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "PRIMEHUB_USER": "alice",
        "PRIMEHUB_GROUP_VOLUME_PATH": str(tmp_path / "no-group-volume"),
        "PRIMEHUB_KERNEL_IDLE_TIMEOUT": "600",
    }
    command = startup.start_command(["/bin/true"])
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=10)
    assert (done.returncode, done.stderr) == (0, "")
    written = [
        json.loads((tmp_path / "primehub-jupyter-config" / name).read_text())
        for name in ("jupyter_server_config.json", "jupyter_notebook_config.json")
    ]
    assert written[0] == written[1] and "MappingKernelManager" in written[0]


def test_without_settings_no_server_configuration_is_written(tmp_path):
    _, env, _, _ = run(tmp_path)
    assert "primehub-jupyter-config" not in env.get("JUPYTER_CONFIG_PATH", "")


def test_no_command_means_the_images_own():
    assert startup.start_command([]) == []


def test_the_prepare_container_chowns_writable_mounts_only():
    mounts = [
        {"name": "volume-home", "mountPath": "/home/jovyan"},
        {"name": "dataset-a", "mountPath": "/datasets/a", "readOnly": True},
        {"name": "phfs", "mountPath": "/phfs", "subPath": "groups/ml-team"},
    ]
    container = startup.prepare_container("img", mounts, 1000, 100, sudo=False)
    assert container["args"] == ["1000:100", "", "/home/jovyan", "/phfs"]
    assert [m["name"] for m in container["volumeMounts"]] == ["volume-home", "phfs"]
    assert container["volumeMounts"][1]["subPath"] == "groups/ml-team"
    security = container["securityContext"]
    assert security["runAsUser"] == 0 and security["capabilities"] == {
        "drop": ["ALL"],
        "add": ["CHOWN"],
    }
    assert security["allowPrivilegeEscalation"] is False


def test_the_prepare_script_chowns_and_writes_the_sudoers_rule(tmp_path):
    target, sudoers = tmp_path / "mount", tmp_path / "sudoers"
    target.mkdir()
    container = startup.prepare_container("img", [], 0, 0, sudo=True)
    script = container["command"]
    args = ["0:0", str(sudoers), str(target), str(tmp_path / "missing")]
    done = subprocess.run([*script, *args], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0
    assert "missing could not be made writable" in done.stderr
    assert sudoers.read_text() == "#0 ALL=(ALL) NOPASSWD:ALL\n"
    assert oct(sudoers.stat().st_mode & 0o777) == "0o440"


HOME = {"name": "volume-home", "mountPath": "/home/jovyan"}
GROUP = {"name": "project", "mountPath": "/project/ml-team"}
PHFS = {"name": "phfs", "mountPath": "/phfs", "subPath": "groups/ml-team"}
NFS = {"name": "corpus", "mountPath": "/datasets/corpus"}
READ_ONLY = {"name": "dataset-a", "mountPath": "/datasets/a", "readOnly": True}
VOLUMES = [
    {"name": "volume-home", "persistentVolumeClaim": {"claimName": "claim-alice"}},
    {"name": "project", "persistentVolumeClaim": {"claimName": "project-ml-team"}},
    {"name": "phfs", "persistentVolumeClaim": {"claimName": "primehub-store"}},
    {"name": "corpus", "nfs": {"server": "nfs.local", "path": "/corpus"}},
    {"name": "dataset-a", "persistentVolumeClaim": {"claimName": "dataset-a"}},
]
UIDS = {"claim-alice": "u-home", "project-ml-team": "u-project", "primehub-store": "u-store"}
MOUNTS = [HOME, GROUP, PHFS, NFS, READ_ONLY]


def test_a_first_launch_prepares_every_writable_mount_and_remembers_the_claims():
    todo, keys = startup.still_to_prepare(MOUNTS, VOLUMES, UIDS, [], "1000:100")
    assert todo == [HOME, GROUP, PHFS, NFS]
    assert keys == [
        "1000:100 u-home ",
        "1000:100 u-project ",
        "1000:100 u-store groups/ml-team",
    ]


def test_the_claim_a_start_creates_is_identified_after_it():
    uids = {k: v for k, v in UIDS.items() if k != "claim-alice"}  # the home claim: not there yet
    todo, keys = startup.still_to_prepare(MOUNTS, VOLUMES, uids, [], "1000:100")
    assert todo == [HOME, GROUP, PHFS, NFS] and "1000:100 u-home " not in keys
    later = startup.unidentified_claims(todo, VOLUMES, uids)
    assert later == [(HOME, VOLUMES[0])]  # not the NFS directory: it has no identity
    mount, volume = later[0]
    assert startup.prepared_key(mount, volume, UIDS, "1000:100") == "1000:100 u-home "
    assert startup.unidentified_claims(todo, VOLUMES, UIDS) == []


@pytest.mark.parametrize(
    "uids, prepared, owner, expected",
    [
        (
            UIDS,
            ["1000:100 u-home ", "1000:100 u-project ", "1000:100 u-store groups/ml-team"],
            "1000:100",
            [NFS],
        ),  # a host or NFS directory has no identity: every launch
        (
            {**UIDS, "project-ml-team": "u-new"},
            ["1000:100 u-project "],
            "1000:100",
            [HOME, GROUP, PHFS, NFS],
        ),  # the claim was made again under its name
        (
            UIDS,
            ["1000:100 u-store groups/other"],
            "1000:100",
            [HOME, GROUP, PHFS, NFS],
        ),  # another subPath of the claim
        (UIDS, ["1000:100 u-home "], "1001:100", [HOME, GROUP, PHFS, NFS]),  # another owner
        ({}, ["1000:100 u-home "], "1000:100", [HOME, GROUP, PHFS, NFS]),  # claim not read
    ],
)
def test_only_mounts_not_yet_given_to_the_owner_are_prepared(uids, prepared, owner, expected):
    todo, _ = startup.still_to_prepare(MOUNTS, VOLUMES, uids, prepared, owner)
    assert todo == expected


def test_the_remembered_mounts_are_bounded_and_the_newest_kept():
    prepared = [f"k{index}" for index in range(startup.PREPARED_LIMIT)]
    merged = startup.remember_prepared(prepared, ["k3", "new"])
    assert len(merged) == startup.PREPARED_LIMIT
    assert merged[-2:] == ["k3", "new"] and "k0" not in merged and merged.count("k3") == 1
    assert startup.remember_prepared(["a"], []) == ["a"]
