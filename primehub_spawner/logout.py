"""The hub's logout: out of the hub, then out of Keycloak (the session ended with the ID token as
``id_token_hint``), and back to the hub's login page."""

from __future__ import annotations

from oauthenticator.oauth2 import OAuthLogoutHandler


class PrimeHubLogoutHandler(OAuthLogoutHandler):
    """Logs out of the hub, then ends the Keycloak session and comes back to the hub's login page."""

    async def handle_logout(self) -> None:
        await super().handle_logout()
        self._end_session_url = None
        user = self.current_user
        auth_state = await user.get_auth_state() if user is not None else None
        back = self.authenticator.post_logout_redirect_url or (
            f"{self.request.protocol}://{self.request.host}{self.settings['login_url']}"
        )
        self._end_session_url = self.authenticator.end_session_url(
            (auth_state or {}).get("id_token"), back
        )

    async def render_logout_page(self) -> None:
        if self._end_session_url:
            self.redirect(self._end_session_url)
            return
        await super().render_logout_page()
