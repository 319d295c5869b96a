"""TLS towards a real TLS server on 127.0.0.1 (certificates from a CA made with openssl): verification,
mutual TLS, one-line errors naming the setting that fixes them, and TLS files re-read without a restart."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_server import HostileServer
from tls_server import TlsServer

from monitoring_client.errors import ConfigError
from monitoring_client.http_transport import HttpTransport, PostError
from monitoring_client.tls import TlsFiles
from testkit.webconfig import Pki, issue_cert, make_pki

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make certificates")
HEADERS = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[TlsServer]:
    server = TlsServer(pki.server)
    yield server
    server.stop()


@pytest.fixture
def mtls_server(pki: Pki) -> Iterator[TlsServer]:
    server = TlsServer(pki.server, client_ca=pki.ca.cert)
    yield server
    server.stop()


def test_a_trusted_receiver_over_one_kept_alive_connection(pki: Pki, tls_server: TlsServer) -> None:
    transport = HttpTransport(tls_server.url, HEADERS, tls=TlsFiles(ca=pki.ca.cert))
    assert [transport.post(b"p", timeout=5).status for _ in range(3)] == [204, 204, 204]
    assert transport.connections == 1


def test_mutual_tls_without_and_with_a_client_certificate(pki: Pki, mtls_server: TlsServer) -> None:
    with pytest.raises(PostError) as caught:
        HttpTransport(mtls_server.url, HEADERS, tls=TlsFiles(ca=pki.ca.cert)).post(b"p", timeout=5)
    # The server's alert, or only its closing the connection (the alert can be lost in the close): either
    # way the message names the settings to set.
    assert caught.value.detail.startswith("TLS: ")
    assert "set REMOTE_WRITE_CERT_FILE and REMOTE_WRITE_KEY_FILE" in caught.value.detail
    tls = TlsFiles(ca=pki.ca.cert, cert=pki.client.cert, key=pki.client.key)
    assert HttpTransport(mtls_server.url, HEADERS, tls=tls).post(b"p", timeout=5).status == 204


def test_a_client_certificate_from_another_ca_names_the_certificate_file(pki: Pki, mtls_server: TlsServer) -> None:
    stranger = issue_cert(pki.other_ca, pki.directory / "stranger", "stranger", client=True)
    tls = TlsFiles(ca=pki.ca.cert, cert=stranger.cert, key=stranger.key)
    with pytest.raises(PostError) as caught:
        HttpTransport(mtls_server.url, HEADERS, tls=tls).post(b"p", timeout=5)
    assert f"check that REMOTE_WRITE_CERT_FILE={stranger.cert} is signed by the CA" in caught.value.detail


def test_the_wrong_ca_names_the_fix_and_a_corrected_file_is_used_without_restart(
    pki: Pki, tls_server: TlsServer, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    shutil.copy(pki.other_ca.cert, ca_file)
    transport = HttpTransport(tls_server.url, HEADERS, tls=TlsFiles(ca=ca_file))
    with pytest.raises(PostError) as caught:
        transport.post(b"p", timeout=5)
    assert caught.value.kind == "error" and caught.value.never_sent
    assert caught.value.detail == (
        f"TLS: the certificate of 127.0.0.1:{tls_server.url.split(':')[2].split('/')[0]} is not trusted (unable to"
        f" get local issuer certificate): REMOTE_WRITE_CA_FILE={ca_file} is not the CA that signed it: point"
        " REMOTE_WRITE_CA_FILE at that CA"
    )
    shutil.copy(pki.ca.cert, ca_file)
    assert transport.post(b"p", timeout=5).status == 204


def test_without_a_ca_file_the_message_says_to_set_one(tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(PostError) as caught:
        HttpTransport(tls_server.url, HEADERS).post(b"p", timeout=5)
    assert "set REMOTE_WRITE_CA_FILE to the CA certificate that signed it" in caught.value.detail


def test_https_to_a_plain_http_port_says_so(pki: Pki, receiver: object) -> None:
    url = receiver.url.replace("http://", "https://")  # type: ignore[attr-defined]
    with pytest.raises(PostError) as caught:
        HttpTransport(url, HEADERS, tls=TlsFiles(ca=pki.ca.cert)).post(b"p", timeout=5)
    assert "does not speak TLS on that port" in caught.value.detail


def test_a_handshake_that_never_completes_ends_at_the_timeout(pki: Pki) -> None:
    silent = HostileServer(lambda conn, head, body: False)  # reads forever: a ClientHello is no HTTP head
    try:
        url = silent.url.replace("http://", "https://")
        with pytest.raises(PostError) as caught:
            HttpTransport(url, HEADERS, tls=TlsFiles(ca=pki.ca.cert)).post(b"p", timeout=1.0)
        assert caught.value.kind == "timeout" and caught.value.never_sent
    finally:
        silent.stop()


def test_unusable_tls_files_at_start_are_configuration_errors(pki: Pki, tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    with pytest.raises(ConfigError, match=f"^REMOTE_WRITE_CA_FILE={not_pem} cannot be used: no PEM CA certificate"):
        TlsFiles(ca=not_pem)
    with pytest.raises(ConfigError, match="the key does not belong to the certificate"):
        TlsFiles(cert=pki.client.cert, key=pki.server.key)
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(pki.client.key), "-aes256", "-passout", "pass:x", "-out", str(encrypted)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(ConfigError, match="the key is encrypted"):
        TlsFiles(cert=pki.client.cert, key=encrypted)
