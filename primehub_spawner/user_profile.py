"""What a realm's user profile (Keycloak ≥ 24) lets the plugin keep in user attributes.

Keycloak drops a user attribute the profile does not declare unless the realm's unmanaged-attribute
policy keeps it: ``GET /users/{id}`` leaves it out and a ``PUT`` carrying it answers 204 and stores
nothing. Unmanaged attributes are also limited to 2,048 characters; a declared one to its
``length`` validator. This module reads the profile (``GET /admin/realms/{realm}/users/profile``)
into what the plugin needs to know: which of its attributes survive, and how long they may be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The user attributes the plugin reads (all three) and writes (environment presets).
VOLUME_CAPACITY = "volumeCapacity"
TIMEZONE = "timezone"
ENV_PRESETS = "predefinedEnvs"
USER_ATTRIBUTES = (VOLUME_CAPACITY, TIMEZONE, ENV_PRESETS)

# Keycloak's default length validator for unmanaged attributes.
UNMANAGED_MAX_LENGTH = 2048
# unmanagedAttributePolicy → (administrators may read, administrators may write)
_UNMANAGED = {"ENABLED": (True, True), "ADMIN_EDIT": (True, True), "ADMIN_VIEW": (True, False)}

SETTING_HINT = (
    "in Keycloak's admin console set Realm settings → General → Unmanaged attributes to "
    "'Only administrators can edit' (unmanagedAttributePolicy ADMIN_EDIT), or declare the "
    "attributes under Realm settings → User profile with administrators allowed to view and edit"
)


@dataclass(frozen=True)
class AttributeRule:
    """How Keycloak treats one user attribute written and read through the admin API."""

    readable: bool
    writable: bool
    max_length: int | None = None


@dataclass(frozen=True)
class UserProfile:
    """The rules of a realm's user profile for the plugin's attributes."""

    rules: Mapping[str, AttributeRule]
    unmanaged_policy: str | None = None

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], names: Iterable[str] = USER_ATTRIBUTES
    ) -> UserProfile:
        """From Keycloak's UP configuration (the JSON of ``GET …/users/profile``)."""
        declared = {a.get("name"): a for a in config.get("attributes") or [] if isinstance(a, dict)}
        policy = config.get("unmanagedAttributePolicy")
        rules = {}
        for name in names:
            attribute = declared.get(name)
            if attribute is None:
                readable, writable = _UNMANAGED.get(policy or "", (False, False))
                rules[name] = AttributeRule(readable, writable, UNMANAGED_MAX_LENGTH)
                continue
            permissions = attribute.get("permissions") or {}
            edit = "admin" in (permissions.get("edit") or [])
            view = edit or "admin" in (permissions.get("view") or [])
            rules[name] = AttributeRule(view, edit, _max_length(attribute))
        return cls(rules, policy)

    def dropped(self) -> list[str]:
        """The plugin's attributes Keycloak hides from administrators (and so from the plugin)."""
        return [name for name, rule in self.rules.items() if not rule.readable]

    def rule(self, name: str) -> AttributeRule:
        return self.rules.get(name) or AttributeRule(True, True)


def _max_length(attribute: Mapping[str, Any]) -> int | None:
    length = (attribute.get("validations") or {}).get("length") or {}
    try:
        return int(length["max"])
    except (KeyError, TypeError, ValueError):
        return None


def dropped_warning(realm: str, names: Iterable[str]) -> str:
    """The log line for attributes the realm drops: which, and the Keycloak setting to change."""
    listed = ", ".join(names)
    return (
        f"Keycloak realm {realm} does not keep the user attribute(s) {listed}: its user profile "
        f"neither declares them nor keeps unmanaged attributes, so reads miss them and saves are "
        f"lost; {SETTING_HINT}"
    )
