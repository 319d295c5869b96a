"""TLS towards the receiver: which CA to trust, which client certificate to show, and what a failure means.

The context is built once from ``REMOTE_WRITE_CA_FILE`` (else the system's trust store, which honours
``SSL_CERT_FILE``/``SSL_CERT_DIR``) and ``REMOTE_WRITE_CERT_FILE`` + ``REMOTE_WRITE_KEY_FILE``, and built
again when one of those files changes (one ``stat`` each per check) or after a TLS failure, so a renewed
certificate or a corrected CA is used without a restart. Material that cannot be loaded at start is a
configuration error; later, the last good context is kept and the problem reported.

``explain`` turns an ``ssl`` exception into one line that names the setting that fixes it: a receiver
certificate signed by another CA, a name mismatch, an expired certificate, a client certificate refused,
or a port that does not speak TLS.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from monitoring_client.errors import ConfigError
from monitoring_client.watched_file import UnreadableFile, WatchedFile, read_bounded, signature

# OpenSSL verification results (X509_V_ERR_*) that mean "signed by a CA this client does not trust".
_UNTRUSTED = {
    18: "self-signed certificate",
    19: "self-signed certificate in the chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
}
_EXPIRED = 10
_NOT_YET_VALID = 9
_HOST_MISMATCH = (62, 64)
# Alerts a server sends when it refuses or lacks the client's certificate (mutual TLS).
_CLIENT_CERT_ALERTS = (
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "TLSV1_ALERT_ACCESS_DENIED",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
)
# A key or certificate file larger than this is not one.
MAX_PEM_BYTES = 4 * 1024 * 1024
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST")


def _no_key_password() -> bytes:
    """An encrypted key is refused instead of OpenSSL asking for its password on the terminal."""
    return b""


class TlsFiles:
    """The TLS context for the receiver and the files it was made from."""

    def __init__(self, ca: Path | None = None, cert: Path | None = None, key: Path | None = None) -> None:
        self.ca = WatchedFile(ca, "REMOTE_WRITE_CA_FILE") if ca is not None else None
        self.cert = WatchedFile(cert, "REMOTE_WRITE_CERT_FILE") if cert is not None else None
        self.key = WatchedFile(key, "REMOTE_WRITE_KEY_FILE") if key is not None else None
        self.problem: str | None = None  # why the newest files could not be used
        try:
            self.context = self._build()
        except _Unusable as exc:
            raise ConfigError(str(exc)) from None

    def _files(self) -> list[WatchedFile]:
        return [f for f in (self.ca, self.cert, self.key) if f is not None]

    def has_files(self) -> bool:
        return bool(self._files())

    def _build(self) -> ssl.SSLContext:
        seen = [(f, signature(f.path)) for f in self._files()]
        try:  # with a CA file, that file only (not the system's store too)
            context = ssl.create_default_context(cafile=str(self.ca.path) if self.ca is not None else None)
        except (ssl.SSLError, OSError, ValueError) as exc:
            where = self.ca.where() if self.ca is not None else "the system's CA store"
            raise _Unusable(f"{where} cannot be used: no PEM CA certificate in it ({_short(exc)})") from None
        if self.cert is not None and self.key is not None:
            try:
                context.load_cert_chain(str(self.cert.path), str(self.key.path), password=_no_key_password)
            except (ssl.SSLError, OSError, ValueError) as exc:
                why = _cert_problem(exc, _encrypted(self.key))
                raise _Unusable(f"{self.cert.where()} and {self.key.where()} cannot be used: {why}") from None
        for file, sig in seen:
            file.mark_read(sig)
        return context

    def refresh(self, force: bool = False) -> bool:
        """Build the context again when a file changed (or ``force``); True when it was replaced. Material
        that cannot be loaded keeps the last good context and sets ``problem``."""
        files = self._files()
        if not files or not (force or any(f.changed() for f in files)):
            return False
        try:
            self.context = self._build()
        except _Unusable as exc:
            self.problem = f"{exc}; still using the TLS files read before"
            return False
        self.problem = None
        return True

    def explain(self, exc: ssl.SSLError, where: str) -> str:
        """One line: what failed towards ``where`` (host:port) and the setting that fixes it."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            code = exc.verify_code
            if code in _UNTRUSTED:
                if self.ca is not None:
                    fix = f"{self.ca.where()} is not the CA that signed it: point REMOTE_WRITE_CA_FILE at that CA"
                else:
                    fix = "set REMOTE_WRITE_CA_FILE to the CA certificate that signed it (PEM)"
                return f"TLS: the certificate of {where} is not trusted ({_UNTRUSTED[code]}): {fix}"
            if code in (_EXPIRED, _NOT_YET_VALID):
                return f"TLS: the certificate of {where} is {exc.verify_message}: renew it on the receiver"
            if code in _HOST_MISMATCH:
                return (
                    f"TLS: the certificate of {where} is not valid for that name: use a name the certificate"
                    " lists in REMOTE_WRITE_URL, or reissue the certificate with it"
                )
            return f"TLS: the certificate of {where} failed verification ({exc.verify_message})"
        reason = exc.reason or ""
        if reason in _CLIENT_CERT_ALERTS:
            return f"TLS: {where} refused the client certificate ({reason.lower()}): {self._client_cert_fix()}"
        if reason in _NOT_TLS:
            return f"TLS: {where} does not speak TLS on that port ({reason.lower()}): use http:// or the TLS port"
        if isinstance(exc, ssl.SSLEOFError) or reason == "UNEXPECTED_EOF_WHILE_READING":
            return self.explain_drop(where)
        return f"TLS: handshake with {where} failed ({_short(exc)})"

    def explain_drop(self, where: str) -> str:
        """A receiver that closed the connection during or right after the handshake, without saying why:
        what a server that wants (another) client certificate does when its alert is lost in the close."""
        return f"TLS: {where} closed the connection at the handshake: {self._client_cert_fix()}"

    def _client_cert_fix(self) -> str:
        if self.cert is None:
            return "if it wants a client certificate, set REMOTE_WRITE_CERT_FILE and REMOTE_WRITE_KEY_FILE"
        return f"check that {self.cert.where()} is signed by the CA the receiver trusts for clients"


class _Unusable(Exception):
    pass


def _encrypted(key: WatchedFile) -> bool:
    """True for a PEM key that needs a passphrase (PKCS#8 ``ENCRYPTED PRIVATE KEY`` or legacy ``Proc-Type``)."""
    try:
        head = read_bounded(key.path, MAX_PEM_BYTES)[:4096]
    except UnreadableFile:
        return False
    return b"ENCRYPTED" in head


def _short(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__


def _cert_problem(exc: BaseException, encrypted: bool) -> str:
    reason = getattr(exc, "reason", None) or ""
    if reason == "KEY_VALUES_MISMATCH":
        return "the key does not belong to the certificate"
    if encrypted or reason in ("BAD_DECRYPT", "BAD_PASSWORD_READ", "PROBLEMS_GETTING_PASSWORD"):
        return "the key is encrypted (give it unencrypted, readable only by the client)"
    return f"not a PEM certificate and its private key ({_short(exc)})"
