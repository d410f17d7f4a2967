"""What a Keycloak group is called outside Keycloak: its volume and PHFS folder, its quota label and
its JupyterHub group. Pure functions.

PrimeHub keyed a group's shared volume (``project-<name>``) and PHFS folder (``groups/<name>``) by
its name lower-cased with ``_`` turned into ``-``, which is not one-to-one: ``ML_Team``, ``ml-team``
and ``ml-Team`` (Keycloak 26 accepts all three side by side) all became ``ml-team``, and so did a
subgroup ``/x/ml-team``. Here a group keeps PrimeHub's name only when that name is its own in the
whole realm — it is a top-level group and no other top-level group's name becomes the same — and
otherwise has none, so its volume and PHFS folder are left out (with a launch warning) rather than
shared with another group (:func:`volume_names`).

Quota labels and JupyterHub group names use :func:`group_key`: a top-level group's name, which
Keycloak keeps unique among top-level groups, else the group's path and id. Paths alone are not
unique: Keycloak 26 does not escape ``/`` in names, so a top-level group ``x/ml-team`` and the
subgroup ``ml-team`` of ``x`` both have the path ``/x/ml-team``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubespawner.slugs import safe_slug

# JupyterHub's group names are a unique ``Unicode(255)`` column.
HUB_NAME_LIMIT = 255


def group_path_name(name: str) -> str:
    """PrimeHub's group name for paths and PVCs (lower-cased, ``_`` → ``-``); a name that is still
    not a valid DNS label (spaces, unicode, too long) becomes KubeSpawner's hashed slug."""
    return safe_slug(name.lower().replace("_", "-"), max_length=50)


def is_top_level(name: str, path: str | None) -> bool:
    """Whether a group with this name and path is a top-level group (a subgroup's path is always
    longer than ``/<name>``). An unknown path (a launch context stored before paths were kept)
    counts as not top-level."""
    return path is not None and path == f"/{name}"


@dataclass(frozen=True)
class TopLevelGroups:
    """The realm's top-level groups (id → name), and the PrimeHub name of each one whose name is
    its own: a group whose name becomes the same as another's has none."""

    names: Mapping[str, str] = field(default_factory=dict)
    volume_names: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        normalized = {group_id: group_path_name(name) for group_id, name in self.names.items()}
        counts = Counter(normalized.values())
        unique = {group_id: n for group_id, n in normalized.items() if counts[n] == 1}
        object.__setattr__(self, "volume_names", unique)

    def knows(self, group_id: str, name: str) -> bool:
        """Whether the group is among these under this name (not created or renamed since)."""
        return self.names.get(group_id) == name

    def volume_name(self, group_id: str, name: str, path: str | None) -> str | None:
        """The group's PrimeHub name (``project-<n>``, ``groups/<n>``) if it is unambiguous, else
        None: for a subgroup, a group whose name becomes another's, and a top-level group not
        among these (created since they were read, or hidden from the service account): it
        cannot be checked."""
        if not is_top_level(name, path) or not self.knows(group_id, name):
            return None
        return self.volume_names.get(group_id)


def unnamed_reason(name: str, path: str | None) -> str:
    """Why a group has no PrimeHub name, for the launch warning."""
    if path is None:
        return "the stored launch context predates group paths; log in again"
    if not is_top_level(name, path):
        return f"it is a subgroup ({path}) and group volumes are named after top-level groups only"
    return (
        f"its name becomes {group_path_name(name)!r} like another group's (names are lower-cased "
        "and '_' becomes '-'), so the volume would be shared"
    )


def group_key(group_id: str, name: str, path: str | None) -> str:
    """One group's name for JupyterHub and its quota label, never another group's: the name of a
    top-level group, ``<path>#<id>`` for any other (a subgroup, whose path starts with ``/``,
    which a top-level group's name may too: it is then keyed the same way), cut to fit JupyterHub's
    limit before the id. A stored launch context without paths gives the name."""
    if path is None or (is_top_level(name, path) and not name.startswith("/")):
        return name
    suffix = f"#{group_id}"
    return path[: HUB_NAME_LIMIT - len(suffix)] + suffix
