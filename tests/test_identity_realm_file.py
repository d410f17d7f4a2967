"""A bad realm file stops the identity server at start, naming the file and the entry."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENT = """
clients:
  - clientId: jupyterhub
    secret: s
    redirectUris: [http://127.0.0.1/cb]
"""


@pytest.mark.parametrize(
    ("body", "entry"),
    [
        (
            "realm: r\ngroups:\n  - {name: g, realmRoles: ['it:missing']}\n",
            "groups['/g']: unknown realm role 'it:missing'",
        ),
        (
            "realm: r\nusers:\n  - {username: alice}\n  - {username: Alice}\n",
            "users['alice']: duplicate user",
        ),
        (
            "realm: r\nclients:\n  - {clientId: jupyterhub, redirectUris: [http://x/cb]}\n",
            "clients['jupyterhub']: a confidential client needs a secret",
        ),
        (
            "realm: r\nusers:\n  - {username: bob, groups: [/nowhere]}\n",
            "users['bob']: unknown group '/nowhere'",
        ),
        (
            "realm: r\nusers:\n  - {username: bob, clientRoles: {realm-management: [superuser]}}\n",
            "users['bob']: unknown role 'superuser' of client 'realm-management'",
        ),
        (
            "realm: r\n"
            + CLIENT
            + "    serviceAccountsEnabled: true\n    serviceAccountRealmRoles: [ghost]\n",
            "clients['jupyterhub'].serviceAccount: unknown realm role 'ghost'",
        ),
        (
            "realm: r\nroles:\n  realm:\n    - {name: a, composites: {realm: [b]}}\n",
            "roles.realm['a'].composites: unknown realm role 'b'",
        ),
        ("realm: r\ndefaultGroups: [/everyone]\n", "defaultGroups: unknown group '/everyone'"),
        ("groups: []\n", "the file must be a mapping with a 'realm' name"),
    ],
    ids=[
        "unknown-role",
        "duplicate-user",
        "missing-secret",
        "unknown-group",
        "unknown-client-role",
        "service-account-role",
        "composite",
        "default-group",
        "no-realm",
    ],
)
def test_bad_realm_file_stops_the_server(tmp_path, body, entry):
    realm_file = tmp_path / "bad-realm.yaml"
    realm_file.write_text(body)
    result = subprocess.run(
        [sys.executable, "-m", "devstack.identity", "--realm", str(realm_file), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"identity server: {realm_file}: {entry}"


def test_the_demo_realm_loads():
    from devstack.identity.realm import load_realm

    realm = load_realm(ROOT / "devstack" / "data" / "realm.yaml")
    assert {u.username for u in realm.users.values()} >= {
        "phadmin",
        "alice",
        "bob",
        "carol",
        "dave",
    }
    dave = realm.user_by_name("dave")
    assert [realm.groups[g].path for g in dave.groups] == ["/everyone"]
    phadmin = realm.user_by_name("phadmin")
    assert "realm-admin" in realm.user_effective(phadmin)[1]["realm-management"]
