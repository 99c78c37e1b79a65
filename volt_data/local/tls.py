"""The local Volt's own certificate authority and its loopback server certificate.

Published clients trust ``wss://`` servers through the platform trust store
only; our client also trusts ``volt.ca_pem``. So the Volt keeps a small CA of its
own (its certificate goes into every client config) and signs a certificate for
the loopback names with it. Plain ``ws://`` stays the default.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import pathlib
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsMaterial", "ensure_tls_material", "server_ssl_context", "write_private_text"]

#: Names the server certificate is valid for: the local Volt listens on loopback.
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")

CA_DAYS = 3650
SERVER_DAYS = 825


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of the CA and server certificate files, and the CA certificate text."""

    ca_pem: str
    ca_cert_path: pathlib.Path
    server_cert_path: pathlib.Path
    server_key_path: pathlib.Path


def write_private_text(path: pathlib.Path, text: str) -> None:
    """Write ``text`` atomically to a file readable by its owner only (mode 0600)."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, text.encode("utf-8"))
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _make_ca(volt_id: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "volt_data local Volt"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"local Volt CA {volt_id}"[:64]),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in LOOPBACK_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in LOOPBACK_ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def ensure_tls_material(directory: pathlib.Path, volt_id: str) -> TlsMaterial:
    """Load the CA and server certificate from ``directory``, creating what is missing.

    Private keys are written with mode 0600. The server certificate is renewed
    (by the same CA) when it has expired.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert_path, ca_key_path = directory / "ca.pem", directory / "ca-key.pem"
    server_cert_path, server_key_path = directory / "server.pem", directory / "server-key.pem"
    if ca_cert_path.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    else:
        ca_key, ca_cert = _make_ca(volt_id)
        write_private_text(ca_key_path, _key_pem(ca_key))
        ca_cert_path.write_text(_cert_pem(ca_cert))
        server_cert_path.unlink(missing_ok=True)  # signed by a CA that no longer exists
    renew = not (server_cert_path.exists() and server_key_path.exists())
    if not renew:
        current = x509.load_pem_x509_certificate(server_cert_path.read_bytes())
        renew = current.not_valid_after_utc <= datetime.datetime.now(datetime.timezone.utc)
    if renew:
        server_key, server_cert = _make_server_cert(ca_key, ca_cert)
        write_private_text(server_key_path, _key_pem(server_key))
        server_cert_path.write_text(_cert_pem(server_cert))
    return TlsMaterial(ca_cert_path.read_text(), ca_cert_path, server_cert_path, server_key_path)


def server_ssl_context(material: TlsMaterial) -> ssl.SSLContext:
    """A server-side TLS context presenting the loopback certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(material.server_cert_path, material.server_key_path)
    return context
