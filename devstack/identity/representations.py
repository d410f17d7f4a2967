"""Keycloak's JSON representations of users, groups and roles (UserRepresentation & co.)."""

from __future__ import annotations

from typing import Any

from .realm import Group, Realm, Role, User


def user_representation(realm: Realm, user: User, brief: bool = False) -> dict[str, Any]:
    rep: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "email": user.email,
        "emailVerified": user.email_verified,
        "createdTimestamp": user.created,
        "enabled": user.enabled,
        "totp": False,
        "disableableCredentialTypes": [],
        "requiredActions": [],
        "notBefore": 0,
        "access": {
            "manageGroupMembership": True,
            "view": True,
            "mapRoles": True,
            "impersonate": False,
            "manage": True,
        },
    }
    for key in ("firstName", "lastName", "email"):
        if not rep[key]:
            del rep[key]
    if user.service_account_client:
        rep["serviceAccountClientId"] = user.service_account_client
    if user.attributes and not brief:
        rep["attributes"] = user.attributes
    return rep


def group_representation(realm: Realm, group: Group, brief: bool = True) -> dict[str, Any]:
    rep: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "path": group.path,
        "subGroupCount": len(group.children),
        "subGroups": [],
        "access": {
            "view": True,
            "viewMembers": True,
            "manageMembers": True,
            "manage": True,
            "manageMembership": True,
        },
    }
    if group.parent is not None:
        rep["parentId"] = group.parent.id
    if not brief:
        rep["attributes"] = group.attributes
        rep["realmRoles"] = list(group.realm_roles)
        rep["clientRoles"] = {k: list(v) for k, v in group.client_roles.items()}
    return rep


def role_representation(realm: Realm, role: Role, brief: bool = True) -> dict[str, Any]:
    container = realm.clients[role.client].id if role.client else realm.name
    rep: dict[str, Any] = {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "composite": bool(role.composites or role.client_composites),
        "clientRole": role.client is not None,
        "containerId": container,
    }
    if not rep["description"]:
        del rep["description"]
    if not brief:
        rep["attributes"] = role.attributes
    return rep


def mappings_representation(
    realm: Realm, realm_roles: list[str], client_roles: dict[str, list[str]]
) -> dict[str, Any]:
    """MappingsRepresentation: direct realm roles and, per client, direct client roles."""
    payload: dict[str, Any] = {
        "realmMappings": [
            role_representation(realm, realm.roles[n]) for n in sorted(set(realm_roles))
        ]
    }
    clients = {}
    for client_id, names in client_roles.items():
        client = realm.clients[client_id]
        clients[client_id] = {
            "id": client.id,
            "client": client_id,
            "mappings": [role_representation(realm, client.roles[n]) for n in sorted(set(names))],
        }
    if clients:
        payload["clientMappings"] = clients
    return payload
