"""A self-signed certificate for localhost, so fal's clients can talk TLS to a local server.

framecast cert --out certs/
framecast serve --ssl-certfile certs/cert.pem --ssl-keyfile certs/key.pem --port 8443
FAL_RUN_HOST=localhost:8443 FAL_QUEUE_RUN_HOST=localhost:8443/queue SSL_CERT_FILE=certs/cert.pem python app.py
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
VALID_DAYS = 825  # the longest validity Apple's TLS clients accept
NAMES = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


def write_self_signed(out_dir: Path) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` (private, mode 0600) under ``out_dir``; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(key)
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / CERT_NAME, out_dir / KEY_NAME
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_bytes)
    return cert_path, key_path


def _certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    # Self-signed and its own trust anchor: marked as a CA (so OpenSSL accepts it in SSL_CERT_FILE) and as a
    # TLS server certificate for every name a local client may use.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Framecast localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(n) for n in NAMES] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES]
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
