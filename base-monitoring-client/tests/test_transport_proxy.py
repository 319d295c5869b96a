"""An HTTP proxy from the environment: absolute-form requests for http, a CONNECT tunnel for https (TLS end to
end, credentials and TLS settings unchanged), NO_PROXY honoured, a refused tunnel reported without the
proxy's password."""

from __future__ import annotations

import http.client
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_server import LoopbackServer, read_head
from tls_server import TlsServer

from monitoring_client.credentials import Credentials, UrlUserinfo
from monitoring_client.http_transport import HttpTransport, PostError, proxy_for
from monitoring_client.tls import TlsFiles
from testkit.webconfig import make_pki

HEADERS = {"Content-Type": "application/x-protobuf"}
PROXY_VARS = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
)


class ForwardProxy(LoopbackServer):
    """A minimal HTTP proxy on 127.0.0.1 that records each request line and its Proxy-Authorization."""

    def __init__(self, refuse_connect: bool = False) -> None:
        self.refuse_connect = refuse_connect
        self.seen: list[tuple[str, str | None]] = []
        super().__init__()

    def serve(self, sock: socket.socket) -> None:
        reader = sock.makefile("rb")
        try:
            while lines := read_head(reader):
                method, target, _ = lines[0].decode().split(" ", 2)
                pairs = [(k.strip(), v.strip()) for k, _, v in (ln.decode().partition(":") for ln in lines[1:-1])]
                headers = {k.lower(): v for k, v in pairs}
                self.seen.append((f"{method} {target}", headers.get("proxy-authorization")))
                if method == "CONNECT":
                    self._tunnel(sock, target)
                    return
                body = reader.read(int(headers.get("content-length", "0")))
                upstream = http.client.HTTPConnection(target.split("/")[2], timeout=10)
                hop = ("proxy-authorization", "connection", "host")
                upstream.request(
                    method,
                    "/" + target.split("/", 3)[3],
                    body=body,
                    headers={k: v for k, v in pairs if k.lower() not in hop},
                )
                answer = upstream.getresponse()
                data = answer.read()
                sock.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (answer.status, len(data), data))
                upstream.close()
        except OSError:
            return
        finally:
            reader.close()
            sock.close()

    def _tunnel(self, sock: socket.socket, target: str) -> None:
        if self.refuse_connect:
            sock.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                dst.close()

        threading.Thread(target=pump, args=(upstream, sock), daemon=True).start()
        pump(sock, upstream)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    server = ForwardProxy()
    yield server
    server.stop()


def test_http_goes_through_the_proxy_in_absolute_form(
    proxy: ForwardProxy, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", f"http://proxyuser:proxy-pw-1@127.0.0.1:{proxy.port}")
    url = receiver.url.replace("http://", "http://writer:pw-5678@")
    transport = HttpTransport(url, HEADERS)
    assert [transport.post(b"p", timeout=5).status for _ in range(2)] == [204, 204]
    line, auth = proxy.seen[0]
    assert line == f"POST {receiver.url}"  # absolute form, without the receiver's credentials
    assert auth == "Basic cHJveHl1c2VyOnByb3h5LXB3LTE="  # proxyuser:proxy-pw-1
    assert receiver.requests[0].headers["Authorization"] == "Basic d3JpdGVyOnB3LTU2Nzg="  # writer:pw-5678
    assert "Proxy-Authorization" not in receiver.requests[0].headers


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make certificates")
def test_https_goes_through_a_connect_tunnel_with_tls_end_to_end(
    proxy: ForwardProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path)
    server = TlsServer(pki.server, client_ca=pki.ca.cert)
    try:
        monkeypatch.setenv("https_proxy", f"127.0.0.1:{proxy.port}")
        tls = TlsFiles(ca=pki.ca.cert, cert=pki.client.cert, key=pki.client.key)
        transport = HttpTransport(server.url, HEADERS, tls=tls)
        assert [transport.post(b"p", timeout=5).status for _ in range(3)] == [204, 204, 204]
        assert transport.connections == 1
        assert proxy.seen == [(f"CONNECT 127.0.0.1:{server.url.split(':')[2].split('/')[0]}", None)]
    finally:
        server.stop()


def test_no_proxy_sends_directly(proxy: ForwardProxy, receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert HttpTransport(receiver.url, HEADERS).post(b"p", timeout=5).status == 204
    assert proxy.seen == []


def test_a_refused_tunnel_is_reported_without_the_proxy_password(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    refusing = ForwardProxy(refuse_connect=True)
    try:
        monkeypatch.setenv("https_proxy", f"http://u:proxy-secret-9@127.0.0.1:{refusing.port}")
        with pytest.raises(PostError) as caught:
            HttpTransport("https://127.0.0.1:9/api/v1/write", HEADERS).post(b"p", timeout=5)
        assert caught.value.never_sent
        assert caught.value.detail.startswith(f"proxy http://***@127.0.0.1:{refusing.port} refused the tunnel")
        assert "407" in caught.value.detail and "proxy-secret-9" not in caught.value.detail
    finally:
        refusing.stop()


def test_an_https_proxy_url_is_a_configuration_error() -> None:
    from monitoring_client.errors import ConfigError

    with pytest.raises(ConfigError, match="only http:// proxies"):
        proxy_for("https://receiver:9/w", {"https": "https://u:pw@proxy:3128"})
    assert UrlUserinfo.of("http://a:b@h/") == UrlUserinfo("a", "b")
    assert Credentials().header is None


def test_proxy_for_follows_the_proxy_variables(proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    assert proxy_for("http://prometheus:9090/api/v1/write") is None
    monkeypatch.setenv("http_proxy", "http://proxy:3128")
    found = proxy_for("http://prometheus:9090/api/v1/write")
    assert found is not None and (found.host, found.port, found.authorization) == ("proxy", 3128, None)
    assert proxy_for("https://prometheus:9090/api/v1/write") is None
    monkeypatch.setenv("no_proxy", "prometheus")
    assert proxy_for("http://prometheus:9090/api/v1/write") is None
