"""The room's certificate: made and kept for `serve --tls`, or the instructor's own.

A self-signed certificate lives in the workshop's folder (cert.pem, and key.pem with
mode 0600) and is reused by the next `serve`, so that its SHA-256 fingerprint, which
attendees compare with the one the instructor shows, stays the same all day. It is
made again only when it is unreadable, about to expire, or does not name the host the
room reaches the server by. `--cert FILE --key FILE` takes a real one instead; every
problem with those files is a UsageError naming the file.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labgen.core.errors import UsageError

CERT, KEY = "cert.pem", "key.pem"
DAYS = 365
RENEW_WITHIN = datetime.timedelta(days=7)  # a certificate this close to expiry is made anew


@dataclass(frozen=True)
class Certificate:
    """The files uvicorn loads and the fingerprint attendees compare."""

    cert: Path
    key: Path
    fingerprint: str  # SHA-256 of the DER certificate, colon-separated hex
    self_signed: bool


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate, as browsers show it: AB:CD:..."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def names_for(hosts: list[str]) -> list[str]:
    """The names a room's certificate covers: loopback, this host's names, and `hosts`
    (the listen address, the public URL's host)."""
    wanted = ["localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn(), *hosts]
    unspecified = {"0.0.0.0", "::", ""}
    return sorted({h.strip("[]") for h in wanted if h.strip("[]") not in unspecified})


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _covered(cert: x509.Certificate, names: list[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return all(n in have for n in names)


def _reusable(cert_path: Path, key_path: Path, names: list[str]) -> x509.Certificate | None:
    """The kept certificate, when it loads, fits its key, lasts and names every host."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)
    except (OSError, ValueError, ssl.SSLError):
        return None
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert.not_valid_after_utc - now < RENEW_WITHIN or not _covered(cert, names):
        return None
    return cert


def self_signed(folder: Path, room: str, hosts: list[str]) -> Certificate:
    """The room's self-signed certificate in `folder`, reused when it still fits."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = folder / CERT, folder / KEY
    names = names_for(hosts)
    kept = _reusable(cert_path, key_path, names)
    if kept is not None:
        return Certificate(cert_path, key_path, fingerprint(kept), True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"labgen workshop {room}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a laptop's clock a bit behind
        .not_valid_after(now + datetime.timedelta(days=DAYS))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key is written 0600 from its first byte: never readable by others, even briefly.
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Certificate(cert_path, key_path, fingerprint(cert), True)


def given(cert_file: str, key_file: str) -> Certificate:
    """The instructor's own certificate and key, checked: a UsageError names the file."""
    cert_path, key_path = Path(cert_file), Path(key_file)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except OSError as exc:
        raise UsageError(f"--cert {cert_file}: {exc.strerror or exc}") from None
    except ValueError:
        raise UsageError(f"--cert {cert_file}: not a PEM certificate") from None
    try:
        serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as exc:
        raise UsageError(f"--key {key_file}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):  # TypeError: the key wants a passphrase
        raise UsageError(
            f"--key {key_file}: not an unencrypted PEM private key (serve cannot ask for "
            "a passphrase)"
        ) from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)
    except ssl.SSLError:
        raise UsageError(f"--key {key_file} does not match --cert {cert_file}") from None
    return Certificate(cert_path, key_path, fingerprint(cert), False)
