"""Reading a realm's user profile: which of the plugin's attributes survive, and how long they may
be (pure; the same rules against real Keycloak are in test_keycloak_contract.py)."""

from __future__ import annotations

import pytest

from primehub_spawner.user_profile import (
    ENV_PRESETS,
    SETTING_HINT,
    TIMEZONE,
    UNMANAGED_MAX_LENGTH,
    VOLUME_CAPACITY,
    AttributeRule,
    UserProfile,
    dropped_warning,
)

KEYCLOAK_DEFAULT = {
    "attributes": [
        {"name": "username", "permissions": {"view": ["admin", "user"], "edit": ["admin", "user"]}},
        {"name": "email", "permissions": {"view": ["admin", "user"], "edit": ["admin", "user"]}},
    ]
}


def declared(name: str, view: list[str], edit: list[str], max_length: object = None) -> dict:
    attribute: dict = {"name": name, "permissions": {"view": view, "edit": edit}}
    if max_length is not None:
        attribute["validations"] = {"length": {"max": max_length}}
    return attribute


@pytest.mark.parametrize(
    ("policy", "rule"),
    [
        (None, AttributeRule(False, False, UNMANAGED_MAX_LENGTH)),  # Keycloak's default: dropped
        ("ENABLED", AttributeRule(True, True, UNMANAGED_MAX_LENGTH)),
        ("ADMIN_EDIT", AttributeRule(True, True, UNMANAGED_MAX_LENGTH)),
        ("ADMIN_VIEW", AttributeRule(True, False, UNMANAGED_MAX_LENGTH)),
        ("SOMETHING_NEW", AttributeRule(False, False, UNMANAGED_MAX_LENGTH)),
    ],
)
def test_unmanaged_attributes_follow_the_realms_policy(policy, rule):
    config = dict(KEYCLOAK_DEFAULT)
    if policy:
        config["unmanagedAttributePolicy"] = policy
    profile = UserProfile.from_config(config)
    assert all(profile.rule(name) == rule for name in (VOLUME_CAPACITY, TIMEZONE, ENV_PRESETS))
    assert profile.dropped() == ([] if rule.readable else [VOLUME_CAPACITY, TIMEZONE, ENV_PRESETS])


@pytest.mark.parametrize(
    ("view", "edit", "max_length", "rule"),
    [
        (["admin"], ["admin"], 65536, AttributeRule(True, True, 65536)),
        (["admin"], ["admin"], "4096", AttributeRule(True, True, 4096)),  # JSON may say "4096"
        ([], ["admin"], None, AttributeRule(True, True, None)),  # edit implies view
        (["admin", "user"], ["user"], None, AttributeRule(True, False, None)),
        (["user"], ["user"], None, AttributeRule(False, False, None)),
        (["admin"], ["admin"], "many", AttributeRule(True, True, None)),
    ],
)
def test_declared_attributes_follow_their_permissions_and_length(view, edit, max_length, rule):
    config = {
        **KEYCLOAK_DEFAULT,
        "unmanagedAttributePolicy": "ADMIN_EDIT",  # does not apply to a declared attribute
        "attributes": [
            *KEYCLOAK_DEFAULT["attributes"],
            declared(ENV_PRESETS, view, edit, max_length),
        ],
    }
    assert UserProfile.from_config(config).rule(ENV_PRESETS) == rule


def test_a_mix_names_only_the_dropped_attributes():
    config = {
        "attributes": [
            declared(VOLUME_CAPACITY, ["admin"], ["admin"]),
            declared(TIMEZONE, ["user"], ["user"]),
        ]
    }
    profile = UserProfile.from_config(config)
    assert profile.dropped() == [TIMEZONE, ENV_PRESETS]


def test_the_warning_names_the_attributes_and_the_setting_to_change():
    warning = dropped_warning("primehub", [TIMEZONE, ENV_PRESETS])
    assert "realm primehub" in warning and "timezone, predefinedEnvs" in warning
    assert warning.endswith(SETTING_HINT) and "unmanagedAttributePolicy ADMIN_EDIT" in warning
