"""The transport for the configured receiver: URL, credentials, TLS material and extra headers.

Built once at start (also by ``--check``), so a secret or certificate file that cannot be used stops the
client with one line and exit status 2 before anything is collected, rather than at the first push.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from monitoring_client.config import Config
from monitoring_client.credentials import Credentials, UrlUserinfo, secret_from
from monitoring_client.http_transport import HttpTransport
from monitoring_client.sender import HEADERS
from monitoring_client.tls import TlsFiles


def build_transport(config: Config) -> HttpTransport:
    """``ConfigError`` when a password, token, CA, certificate or key file cannot be used."""
    url = config.remote_write_url
    credentials = Credentials(
        username=config.remote_write_username,
        password=secret_from("REMOTE_WRITE_PASSWORD", config.remote_write_password, config.remote_write_password_file),
        token=secret_from(
            "REMOTE_WRITE_BEARER_TOKEN", config.remote_write_bearer_token, config.remote_write_bearer_token_file
        ),
        url_userinfo=UrlUserinfo.of(url),
    )
    tls = None
    if urlsplit(url).scheme.lower() == "https":
        tls = TlsFiles(config.remote_write_ca_file, config.remote_write_cert_file, config.remote_write_key_file)
    return HttpTransport(
        url, HEADERS, credentials=credentials, tls=tls, extra_headers=config.remote_write_headers or ()
    )
