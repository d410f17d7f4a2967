"""What PrimeHubAuthenticator keeps in a user's auth state (pure functions)."""

import json

from primehub_spawner import auth_states

TOKENS = {"access_token": "A" * 1400, "refresh_token": "R" * 700, "id_token": "I" * 1100}
OAUTHENTICATOR_STATE = {
    **TOKENS,
    "scope": ["openid", "profile"],
    "token_response": {**TOKENS, "token_type": "Bearer", "expires_in": 300},
    "oauth_user": {"sub": "u1", "groups": ["/ml-team"], "primehub_roles": ["it:cpu-1"]},
    auth_states.AUTH_STATE_KEY: {"v": 1, "groups": []},
    auth_states.MEMBERSHIP_KEY: {"groups": ["/ml-team"], "roles": ["it:cpu-1"]},
}


def test_each_token_is_kept_once_where_the_refresh_and_the_logout_read_it():
    slim = auth_states.slimmed(OAUTHENTICATOR_STATE, "oauth_user")
    assert slim["token_response"] == {
        "access_token": TOKENS["access_token"],  # OAuthenticator's refresh reads it here
        "token_type": "Bearer",
        "expires_in": 300,
    }
    assert slim["refresh_token"] == TOKENS["refresh_token"]  # the refresh's token request
    assert slim["id_token"] == TOKENS["id_token"]  # the logout's id_token_hint
    assert "access_token" not in slim and "oauth_user" not in slim
    assert slim[auth_states.MEMBERSHIP_KEY] == OAUTHENTICATOR_STATE[auth_states.MEMBERSHIP_KEY]
    text = json.dumps(slim)
    for token in TOKENS.values():
        assert text.count(token) == 1
    assert len(text) < 0.6 * len(json.dumps(OAUTHENTICATOR_STATE))


def test_slimming_leaves_its_input_alone_and_is_idempotent():
    before = json.dumps(OAUTHENTICATOR_STATE, sort_keys=True)
    slim = auth_states.slimmed(OAUTHENTICATOR_STATE, "oauth_user")
    assert json.dumps(OAUTHENTICATOR_STATE, sort_keys=True) == before
    assert auth_states.slimmed(slim, "oauth_user") == slim


def test_a_state_without_a_token_response_gets_an_empty_one():
    assert auth_states.slimmed({"refresh_token": "R"}, "oauth_user") == {
        "refresh_token": "R",
        "token_response": {},
    }
