"""Material for a protected server: a private CA, certificates for 127.0.0.1, and a Prometheus web config.

Authenticated and encrypted pushes can only be tested against a server that really checks passwords and
certificates. Prometheus (``--web.config.file``) and its exporters share one format: ``basic_auth_users``
(bcrypt hashes) and ``tls_server_config`` (certificate, key, optionally the CA that client certificates
must chain to). Certificates come from the ``openssl`` command, hashes from the ``bcrypt`` package (a test
requirement); everything is written into a directory the test owns.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _openssl(*args: str | Path) -> None:
    if shutil.which("openssl") is None:
        raise FileNotFoundError("the openssl command is needed to make test certificates (apt-get install openssl)")
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "testkit-ca") -> CertPair:
    """A self-signed CA valid for a day."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
        "-keyout", pair.key, "-out", pair.cert,
    )  # fmt: skip
    return pair


def issue_cert(ca: CertPair, directory: Path, name: str, *, client: bool = False) -> CertPair:
    """A certificate signed by ``ca``: for the server at 127.0.0.1, or (``client``) for a client."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
    csr = directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    usage = "clientAuth" if client else "serverAuth"
    ext.write_text(f"subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", pair.key, "-out", csr)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-days", "1",
        "-extfile", ext, "-out", pair.cert,
    )  # fmt: skip
    return pair


@dataclass(frozen=True)
class Pki:
    """What TLS tests need: a CA, a server certificate for 127.0.0.1 and a client certificate it signed,
    and a second, unrelated CA (the wrong one)."""

    ca: CertPair
    other_ca: CertPair
    server: CertPair
    client: CertPair
    directory: Path


def make_pki(directory: Path) -> Pki:
    """A fresh ``Pki`` in ``directory`` (a few seconds of openssl)."""
    ca = make_ca(directory / "ca")
    return Pki(
        ca,
        make_ca(directory / "other", "other-ca"),
        issue_cert(ca, directory / "server", "server"),
        issue_cert(ca, directory / "client", "client", client=True),
        directory,
    )


def bcrypt_hash(password: str, rounds: int = 4) -> str:
    """The bcrypt hash Prometheus expects in ``basic_auth_users`` (few rounds: tests need no slowness)."""
    import bcrypt  # test requirement, imported here so the rest of testkit works without it

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def write_web_config(
    path: Path,
    *,
    users: Mapping[str, str] | None = None,
    tls: CertPair | None = None,
    client_ca: Path | None = None,
) -> Path:
    """Write a web config: ``users`` maps user names to plain passwords (hashed here); ``tls`` turns on
    HTTPS; ``client_ca`` also requires a client certificate signed by that CA (mutual TLS)."""
    config: dict[str, object] = {}
    if tls is not None:
        server: dict[str, str] = {"cert_file": str(tls.cert), "key_file": str(tls.key)}
        if client_ca is not None:
            server.update(client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(client_ca))
        config["tls_server_config"] = server
    if users:
        config["basic_auth_users"] = {user: bcrypt_hash(password) for user, password in users.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
    return path
