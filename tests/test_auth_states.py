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


def refreshed_by_oauthenticator(token_response: dict, userinfo: dict) -> dict:
    """OAuthenticator's build_auth_state_dict: the tokens at the top copied from the response."""
    return {
        "access_token": token_response["access_token"],
        "refresh_token": token_response.get("refresh_token", ""),
        "id_token": token_response.get("id_token", ""),
        "scope": ["openid", "profile"],
        "token_response": token_response,
        "oauth_user": userinfo,
    }


def test_a_refresh_with_the_stored_access_token_keeps_the_stored_refresh_and_id_tokens():
    stored = auth_states.slimmed(OAUTHENTICATOR_STATE, "oauth_user")
    refreshed = refreshed_by_oauthenticator(
        stored["token_response"], OAUTHENTICATOR_STATE["oauth_user"]
    )
    slim = auth_states.slimmed(refreshed, "oauth_user", stored)
    assert slim["refresh_token"] == TOKENS["refresh_token"]
    assert slim["id_token"] == TOKENS["id_token"]
    assert slim["token_response"] == stored["token_response"]


def test_tokens_renewed_by_a_refresh_replace_the_stored_ones():
    stored = auth_states.slimmed(OAUTHENTICATOR_STATE, "oauth_user")
    renewed = {"access_token": "a2", "refresh_token": "r2", "id_token": "i2", "expires_in": 300}
    slim = auth_states.slimmed(
        refreshed_by_oauthenticator(renewed, OAUTHENTICATOR_STATE["oauth_user"]),
        "oauth_user",
        stored,
    )
    assert (slim["refresh_token"], slim["id_token"]) == ("r2", "i2")
    assert slim["token_response"] == {"access_token": "a2", "expires_in": 300}
