"""A throw-away PKI for the test ground: a CA, the API server's serving certificate, the kubelet's
serving certificate, the API server's client certificate for kubelets and a service-account key."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class PKIFiles:
    """Paths of the test ground's certificates and keys (PEM)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    sa_public_key: Path
    sa_private_key: Path
    # The kubelet's HTTPS endpoint (logs), for 127.0.0.1: every fake node's InternalIP
    kubelet_cert: Path
    kubelet_key: Path
    # What the API server presents to kubelets (--kubelet-client-certificate), as kubeadm's
    kubelet_client_cert: Path
    kubelet_client_key: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


LOOPBACK_NAMES = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]


def _issue(
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    name: x509.Name,
    usage: x509.ObjectIdentifier,
    cert_path: Path,
    key_path: Path,
    valid_until: datetime.datetime,
) -> None:
    """A leaf certificate for ``usage`` (server or client auth), signed by the CA; a server
    certificate names the loopback address."""
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(valid_until)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(x509.SubjectAlternativeName(LOOPBACK_NAMES), critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)


def ensure_pki(directory: Path) -> PKIFiles:
    """Create the PKI in ``directory`` unless it is already there (all of it); return its paths."""
    files = PKIFiles(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "apiserver.crt",
        server_key=directory / "apiserver.key",
        sa_public_key=directory / "sa.pub",
        sa_private_key=directory / "sa.key",
        kubelet_cert=directory / "kubelet.crt",
        kubelet_key=directory / "kubelet.key",
        kubelet_client_cert=directory / "apiserver-kubelet-client.crt",
        kubelet_client_key=directory / "apiserver-kubelet-client.key",
    )
    if all(path.exists() for path in vars(files).values()):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid_until = now + datetime.timedelta(days=3650)

    ca_key = _key()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("devstack-ca"))
        .issuer_name(_name("devstack-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(valid_until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server = ExtendedKeyUsageOID.SERVER_AUTH
    _issue(
        ca_key,
        ca_cert,
        _name("kube-apiserver"),
        server,
        files.server_cert,
        files.server_key,
        valid_until,
    )
    _issue(
        ca_key,
        ca_cert,
        _name("devstack-kubelet"),
        server,
        files.kubelet_cert,
        files.kubelet_key,
        valid_until,
    )
    client_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-kubelet-client"),
        ]
    )
    _issue(
        ca_key,
        ca_cert,
        client_name,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        files.kubelet_client_cert,
        files.kubelet_client_key,
        valid_until,
    )
    sa_key = _key()
    _write_key(sa_key, files.sa_private_key)
    files.sa_public_key.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return files
