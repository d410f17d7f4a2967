"""What runs in a notebook pod before the server: writable mounts, sudo, start-up profiles.

Pure functions returning pod parts. The notebook server runs as the notebook user (uid 1000,
gid 100 by default, PrimeHub's), never as root. Kubernetes gives a pod's ``fsGroup`` to the
volumes it manages (claims on most storage, emptyDir) but not to hostPath or NFS volumes, which
stay as the storage made them, often root-owned; PrimeHub started its pods as root and chowned
such mounts (``CHOWN_EXTRA``). Here a short init container does only that: as root with no
capability but ``CHOWN``, it gives each mount the user may write to the
notebook user, then exits. With sudo granted it also writes a sudoers rule for the notebook user
into an emptyDir mounted at ``/etc/sudoers.d``. A mount on a claim is prepared once: the server
remembers which claims (by UID, so a claim made again under its name is prepared again) and
subPaths it has given to which uid:gid, and a launch whose writable mounts all are so, without
sudo, has no init container (:func:`still_to_prepare`) — a container less to start.

The server's command is wrapped in a POSIX shell script (:func:`start_command`) that sources the
launch group's start-up profiles — ``<group volume>/.primehub/profile``, then
``.primehub/<user>.profile`` (PrimeHub's ``profile.sh``) — unless in safe mode. Each profile runs
in a subshell, so one that fails (an error, ``exit``) never stops the server; the variables it
exports reach the server; its output goes to the container's log, and a failure is written to
``~/primehub-profile-errors.log``, which the user sees in her home (and which a clean start
removes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .volumes import claim_of

INIT_CONTAINER = "primehub-prepare"
SUDOERS_VOLUME = "primehub-sudoers"
SUDOERS_DIR = "/etc/sudoers.d"
SUDOERS_FILE = "primehub-notebook-user"
PROFILE_ERRORS = "primehub-profile-errors.log"

SERVER_CONFIG = r"""
config=""
if [ -n "${PRIMEHUB_KERNEL_IDLE_TIMEOUT:-}" ]; then
  config="\"MappingKernelManager\": {\"cull_idle_timeout\": $PRIMEHUB_KERNEL_IDLE_TIMEOUT, \"cull_interval\": ${PRIMEHUB_KERNEL_CULL_INTERVAL:-60}, \"cull_connected\": true}"
fi
if [ -n "${PRIMEHUB_HUB_AUTH_CACHE_MAX_AGE:-}" ]; then
  config="${config:+$config, }\"HubOAuth\": {\"cache_max_age\": $PRIMEHUB_HUB_AUTH_CACHE_MAX_AGE}"
fi
if [ -n "$config" ]; then
  config_dir="${TMPDIR:-/tmp}/primehub-jupyter-config"
  mkdir -p "$config_dir"
  for file in jupyter_server_config.json jupyter_notebook_config.json; do
    printf '{%s}\n' "$config" >"$config_dir/$file"
  done
  export JUPYTER_CONFIG_PATH="$config_dir${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
fi
"""

PROFILES = r"""
errors="${HOME:-/home/jovyan}/primehub-profile-errors.log"
if [ -e "$errors" ] || [ -h "$errors" ]; then rm -f "$errors" 2>/dev/null; fi
group_dir="${PRIMEHUB_GROUP_VOLUME_PATH:-}"
if [ "${PRIMEHUB_SAFE_MODE_ENABLED:-}" = true ]; then
  echo "primehub: safe mode, start-up profiles skipped" >&2
elif [ -n "$group_dir" ]; then
  output="${TMPDIR:-/tmp}/primehub-profile.$$"
  for profile in "$group_dir/.primehub/profile" "$group_dir/.primehub/${PRIMEHUB_USER}.profile"; do
    [ -f "$profile" ] || continue
    exports=$( (. "$profile" >&2; status=$?; export -p; exit $status) 2>"$output" )
    status=$?
    while IFS= read -r line; do printf 'primehub: %s: %s\n' "$profile" "$line" >&2; done <"$output"
    if [ -n "$exports" ]; then eval "$exports"; fi
    if [ "$status" -ne 0 ]; then
      echo "primehub: $profile failed with status $status" >&2
      { echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC'): $profile failed with status $status:"
        tail -n 20 "$output"; echo; } >>"$errors" 2>/dev/null
    fi
  done
  if [ -e "$output" ]; then rm -f "$output"; fi
fi
"""


def start_command(command: list[str], profiles: bool = True) -> list[str]:
    """``command`` (the server's) run by the start-up script: the server's configuration (kernel
    culling, how long it trusts the hub's answer on who may use it), then, with ``profiles``, the group's start-up profiles. Unchanged when empty (the image's own
    entrypoint, which the script cannot know)."""
    if not command:
        return []
    script = SERVER_CONFIG + (PROFILES if profiles else "") + 'exec "$@"\n'
    return ["/bin/sh", "-c", script.strip(), "primehub-start", *command]


def writable_paths(mounts: Iterable[Mapping[str, Any]]) -> list[str]:
    """Mount paths the user may write to, in order, once each."""
    paths: list[str] = []
    for mount in mounts:
        if not mount.get("readOnly") and mount["mountPath"] not in paths:
            paths.append(mount["mountPath"])
    return paths


PREPARE_SCRIPT = r"""
owner="$1"; sudoers="$2"; shift 2
for path in "$@"; do
  chown "$owner" "$path" || echo "primehub: $path could not be made writable for $owner" >&2
done
if [ -n "$sudoers" ]; then
  printf '#%s ALL=(ALL) NOPASSWD:ALL\n' "${owner%%:*}" >"$sudoers" && chmod 0440 "$sudoers"
fi
""".strip()


PREPARED_LIMIT = 64


def prepared_key(
    mount: Mapping[str, Any], volume: Mapping[str, Any], claim_uids: Mapping[str, str], owner: str
) -> str | None:
    """What a chown of ``mount`` for ``owner`` (``uid:gid``) leaves done for later launches: None
    unless the volume is an existing claim (a hostPath or NFS directory has no identity to
    remember it by, and is prepared at every launch)."""
    claim = claim_of(volume)
    uid = claim_uids.get(claim) if claim else None
    return f"{owner} {uid} {mount.get('subPath', '')}" if uid else None


def still_to_prepare(
    mounts: Iterable[Mapping[str, Any]],
    volumes: Iterable[Mapping[str, Any]],
    claim_uids: Mapping[str, str],
    prepared: Iterable[str],
    owner: str,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The writable ``mounts`` an init container must still give to ``owner``, and the keys
    (:func:`prepared_key`) of those it prepares that later launches may skip."""
    by_name = {volume["name"]: volume for volume in volumes}
    done = set(prepared)
    todo, keys = [], []
    for mount in mounts:
        if mount.get("readOnly"):
            continue
        key = prepared_key(mount, by_name.get(mount["name"], {}), claim_uids, owner)
        if key is None or key not in done:
            todo.append(dict(mount))
            if key is not None:
                keys.append(key)
    return todo, keys


def unidentified_claims(
    mounts: Iterable[Mapping[str, Any]],
    volumes: Iterable[Mapping[str, Any]],
    claim_uids: Mapping[str, str],
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Of the ``mounts`` being prepared, those on a claim whose UID was not known when the launch
    was checked (the home claim its start creates), each with its volume."""
    by_name = {volume["name"]: volume for volume in volumes}
    return [
        (dict(mount), dict(by_name[mount["name"]]))
        for mount in mounts
        if claim_of(by_name.get(mount["name"], {})) not in (None, *claim_uids)
    ]


def remember_prepared(prepared: Iterable[str], keys: Iterable[str]) -> list[str]:
    """``prepared`` with ``keys`` added, the newest last, at most ``PREPARED_LIMIT``."""
    new = list(dict.fromkeys(keys))
    return ([key for key in prepared if key not in new] + new)[-PREPARED_LIMIT:]


def prepare_container(
    image: str,
    mounts: list[dict[str, Any]],
    uid: int,
    gid: int,
    sudo: bool,
    pull_policy: str | None = None,
) -> dict[str, Any]:
    """The init container that makes ``mounts`` (the notebook's writable ones) the notebook
    user's and, with ``sudo``, writes her sudoers rule. Root, with ``CHOWN`` as its only
    capability; paths are arguments, never part of the script."""
    writable = [dict(m) for m in mounts if not m.get("readOnly")]
    sudoers = ""
    if sudo:
        writable.append({"name": SUDOERS_VOLUME, "mountPath": SUDOERS_DIR})
        sudoers = f"{SUDOERS_DIR}/{SUDOERS_FILE}"
    container: dict[str, Any] = {
        "name": INIT_CONTAINER,
        "image": image,
        "command": ["/bin/sh", "-c", PREPARE_SCRIPT, INIT_CONTAINER],
        "args": [f"{uid}:{gid}", sudoers, *writable_paths(writable)],
        "volumeMounts": writable,
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
        },
        "resources": {
            "limits": {"cpu": "100m", "memory": "64Mi"},
            "requests": {"cpu": "100m", "memory": "64Mi"},
        },
    }
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    return container


def sudo_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """The emptyDir that carries the sudoers rule, and its read-only mount in the notebook."""
    volume = {"name": SUDOERS_VOLUME, "emptyDir": {"sizeLimit": "1Mi"}}
    mount = {"name": SUDOERS_VOLUME, "mountPath": SUDOERS_DIR, "readOnly": True}
    return volume, mount
