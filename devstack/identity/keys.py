"""The realm's signing keys: RS256 for access and ID tokens (published as a JWKS), HS512 for refresh
tokens (as Keycloak signs them). All JOSE work is PyJWT's; keys and certificates are cryptography's."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


class RealmKeys:
    """One RSA key pair (with a self-signed certificate for ``x5c``) and one HMAC secret."""

    def __init__(self, realm: str) -> None:
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public = self._private.public_key()
        self._hmac = secrets.token_bytes(64)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._public))
        thumbprint_input = json.dumps(
            {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":")
        )
        self.kid = (
            base64.urlsafe_b64encode(hashlib.sha256(thumbprint_input.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, realm)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(self._private, hashes.SHA256())
        )
        der = certificate.public_bytes(serialization.Encoding.DER)
        self._jwk = {
            **jwk,
            "kid": self.kid,
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "x5c": [base64.b64encode(der).decode()],
            "x5t": base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode(),  # noqa: S324 - a thumbprint, as JWK defines it
            "x5t#S256": base64.urlsafe_b64encode(hashlib.sha256(der).digest())
            .rstrip(b"=")
            .decode(),
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._jwk]}

    def public_key_base64(self) -> str:
        """The bare base64 SubjectPublicKeyInfo that ``GET /realms/{realm}`` shows as ``public_key``."""
        der = self._public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._private, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )

    def verify(self, token: str, verify_exp: bool = True) -> dict[str, Any]:
        """Claims of a valid (and, unless told otherwise, unexpired) RS256 token of this realm;
        raises jwt.InvalidTokenError."""
        return jwt.decode(
            token,
            self._public,
            algorithms=["RS256"],
            options={"verify_aud": False, "verify_exp": verify_exp},
        )

    def sign_refresh(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._hmac, algorithm="HS512", headers={"kid": f"{self.kid}-hmac", "typ": "JWT"}
        )

    def verify_refresh(self, token: str) -> dict[str, Any]:
        return jwt.decode(token, self._hmac, algorithms=["HS512"], options={"verify_aud": False})

    @staticmethod
    def half_hash(value: str) -> str:
        """``at_hash``: the left half of SHA-256, base64url (OpenID Connect Core 3.1.3.6)."""
        digest = hashlib.sha256(value.encode()).digest()
        return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
