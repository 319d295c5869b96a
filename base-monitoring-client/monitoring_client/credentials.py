"""The ``Authorization`` header of every push: Basic auth or a bearer token, from values or files.

One object decides the header, so exactly one place holds the secrets and can list them for ``scrub``.
A password or token kept in a file is re-read when the file changes (``WatchedFile``: one ``stat`` per
check) and whenever the transport asks for it after the receiver refused the credentials, so fixing the
file on disk is enough. A file that cannot be read or is empty at start is a configuration error; later,
the last good value is kept and the problem reported once, until the file is usable again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from monitoring_client.errors import ConfigError
from monitoring_client.watched_file import UnreadableFile, WatchedFile

# A password or token file larger than this is not a password or token (and is not read whole).
MAX_SECRET_BYTES = 64 * 1024


def _text_of(data: bytes) -> str:
    """A secret file's content: UTF-8, surrounding blanks (a final newline) removed."""
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UnreadableFile("not UTF-8 text") from None


class SecretValue:
    """A password or token given as a value (fixed) or in a file (re-read when it changes)."""

    def __init__(self, variable: str, *, value: str | None = None, path: Path | None = None) -> None:
        if (value is None) == (path is None):
            raise ValueError("give a value or a path")
        self.variable = variable
        self.file = WatchedFile(path, variable) if path is not None else None
        self.value = value if value is not None else self._read_at_start()
        self.problem: str | None = None  # why the file's newest content could not be used

    def _read(self) -> str:
        assert self.file is not None
        text = _text_of(self.file.read(MAX_SECRET_BYTES))
        if not text:
            raise UnreadableFile("empty")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise UnreadableFile("contains a control character")
        return text

    def _read_at_start(self) -> str:
        try:
            return self._read()
        except UnreadableFile as exc:
            assert self.file is not None
            raise ConfigError(f"{self.file.where()} cannot be used: {exc}") from None

    def refresh(self, force: bool = False) -> bool:
        """Re-read the file if it changed (or ``force``); True when the value changed. A file that cannot
        be used keeps the last good value and sets ``problem``."""
        if self.file is None or not (force or self.file.changed()):
            return False
        try:
            text = self._read()
        except UnreadableFile as exc:
            self.problem = f"{self.file.where()} cannot be used ({exc}); still using the value read before"
            return False
        self.problem = None
        changed = text != self.value
        self.value = text
        return changed

    def source(self) -> str:
        return self.file.where() if self.file is not None else self.variable


@dataclass(frozen=True)
class UrlUserinfo:
    """``user:password@`` from the URL, decoded."""

    user: str
    password: str

    @classmethod
    def of(cls, url: str) -> UrlUserinfo | None:
        parts = urlsplit(url)
        if parts.username is None:
            return None
        return cls(unquote(parts.username), unquote(parts.password or ""))


class Credentials:
    """What goes into ``Authorization``: Basic (user and password) or Bearer (token), or nothing."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: SecretValue | None = None,
        token: SecretValue | None = None,
        url_userinfo: UrlUserinfo | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.token = token
        self.url_userinfo = url_userinfo
        self.header: str | None = None
        self._build()

    def _build(self) -> None:
        if self.token is not None:
            self.header = "Bearer " + self.token.value
        elif self.username is not None and self.password is not None:
            self.header = _basic(self.username, self.password.value)
        elif self.url_userinfo is not None:
            self.header = _basic(self.url_userinfo.user, self.url_userinfo.password)
        else:
            self.header = None

    def _files(self) -> list[SecretValue]:
        return [s for s in (self.password, self.token) if s is not None and s.file is not None]

    def has_files(self) -> bool:
        return bool(self._files())

    def refresh(self, force: bool = False) -> bool:
        """Re-read the secret files that changed (all of them with ``force``); True when the header changed."""
        changed = False
        for secret in self._files():
            changed |= secret.refresh(force)
        if changed:
            self._build()
        return changed

    def problems(self) -> list[str]:
        return [s.problem for s in self._files() if s.problem]

    def secrets(self) -> list[str]:
        """Every secret text a message must never contain: the values and the header they make."""
        out = []
        for secret in (self.password, self.token):
            if secret is not None:
                out.append(secret.value)
        if self.url_userinfo is not None:
            out += [self.url_userinfo.password, self.url_userinfo.user]
        if self.header is not None:
            out.append(self.header.split(" ", 1)[1])
        return [s for s in out if s]

    def describe(self) -> str:
        """Which credentials are sent, for messages: where they come from, never what they are."""
        if self.token is not None:
            return f"a bearer token from {self.token.source()}"
        if self.password is not None:
            return f"Basic auth as REMOTE_WRITE_USERNAME with the password from {self.password.source()}"
        if self.url_userinfo is not None:
            return "Basic auth from the user:password@ of REMOTE_WRITE_URL"
        return "no credentials"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def secret_from(variable: str, value: str | None, path: Path | None) -> SecretValue | None:
    """The ``SecretValue`` of a value/file pair of settings (at most one of them is set), or None."""
    if path is not None:
        return SecretValue(f"{variable}_FILE", path=path)
    if value is not None:
        return SecretValue(variable, value=value)
    return None
