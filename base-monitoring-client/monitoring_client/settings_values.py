"""Kinds of setting values: how a variable's text becomes a value, what is accepted, what must be refused.

Each kind is one small object with the same five parts, so the settings table can use any of them for
parsing (``__call__``), the error line and the README's "accepted" column (``expected``), how the error line
shows the text given (``shown``: a kind whose values can be secrets shows less of it, or nothing), the
README's default column (``show``) and the reliability report's bad-input cases (``refused``: values it must
refuse, derived from its bounds). A kind raises ``Invalid`` (with a short reason that never repeats the
text) for a value it does not accept; the table turns that into the one-line ``ConfigError`` naming the
variable. The text given is never empty (empty means unset).
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from monitoring_client.records import METRIC_NAME_RE
from monitoring_client.redaction import redact_url
from monitoring_client.remote_url import BadUrl, normalise_url
from monitoring_client.request_headers import BadHeaders, parse_headers, shown_names

T_co = TypeVar("T_co", covariant=True)

# Placeholder in ``Bad.also``: the reliability report puts a free TCP port there.
FREE_PORT = "{free_port}"


class Invalid(ValueError):
    """The text is not a value of this kind. ``reason`` (optional) says what is wrong in a few words; it
    never repeats the text, which may be a secret."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Bad:
    """A value a setting must refuse: ``why`` in a few words, and other variables the case needs set."""

    why: str
    value: str
    also: Mapping[str, str] = field(default_factory=dict)


class Kind(Protocol[T_co]):
    @property
    def expected(self) -> str:
        """What is accepted, completing "expected ..." in an error line."""
        ...

    def __call__(self, text: str) -> T_co: ...

    def show(self, value: Any) -> str:
        """A value as the README's default column writes it."""
        ...

    def shown(self, text: str) -> str:
        """How an error line shows the given text after the variable's name: ``='text'``, or less of it for
        a value that may hold a secret."""
        ...

    def refused(self) -> Sequence[Bad]:
        """Values of the wrong shape or out of bounds, each of which must be refused."""
        ...


class _KindBase:
    """Defaults of a kind: values show as themselves; ``bad_values`` are the values it must refuse
    (a kind whose bounds decide them computes ``refused`` instead)."""

    bad_values: ClassVar[tuple[Bad, ...]] = ()

    def show(self, value: Any) -> str:
        return str(value)

    def shown(self, text: str) -> str:
        return f"={text!r}"

    def refused(self) -> Sequence[Bad]:
        return self.bad_values


def _number(value: float) -> str:
    """``1000000`` rather than ``1e+06``, ``0.01`` as is."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _bounds_text(kind: str, minimum: float | None, maximum: float | None, above: float | None) -> str:
    parts = []
    if above is not None:
        parts.append(f"> {_number(above)}")
    if minimum is not None:
        parts.append(f">= {_number(minimum)}")
    if maximum is not None:
        parts.append(f"<= {_number(maximum)}")
    return kind + (" " + " and ".join(parts) if parts else "")


@dataclass(frozen=True)
class Number(_KindBase):
    """A finite number within ``[minimum, maximum]``, and strictly greater than ``above`` if given."""

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None

    @property
    def expected(self) -> str:
        return _bounds_text("a number", self.minimum, self.maximum, self.above)

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise Invalid() from None
        if (
            not math.isfinite(value)
            or (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
            or (self.above is not None and value <= self.above)
        ):
            raise Invalid()
        return value

    def show(self, value: Any) -> str:
        return _number(value)

    def refused(self) -> Sequence[Bad]:
        bad = [Bad("not a number", "fast")]
        if self.above is not None:
            bad.append(Bad(f"not above {_number(self.above)}", _number(self.above)))
        elif self.minimum is not None:
            below = self.minimum / 10 if 0 < self.minimum < 1 else self.minimum - 1
            bad.append(Bad(f"below {_number(self.minimum)}", _number(below)))
        if self.maximum is not None:
            bad.append(Bad(f"above {_number(self.maximum)}", _number(self.maximum * 2)))
        return bad


@dataclass(frozen=True)
class WholeNumber(_KindBase):
    """A whole number within ``[minimum, maximum]``."""

    minimum: int | None = None
    maximum: int | None = None

    @property
    def expected(self) -> str:
        return _bounds_text("a whole number", self.minimum, self.maximum, None)

    def __call__(self, text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise Invalid() from None
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise Invalid()
        return value

    def refused(self) -> Sequence[Bad]:
        bad = [Bad("not a whole number", "2.5")]
        if self.minimum is not None:
            bad.append(Bad(f"below {self.minimum}", str(self.minimum - 1)))
        if self.maximum is not None:
            bad.append(Bad(f"above {self.maximum}", str(self.maximum + 1)))
        return bad


_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_BYTES_RE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


@dataclass(frozen=True)
class Bytes(_KindBase):
    """A size in bytes: a whole number, optionally with a unit (KiB, MiB, GiB = powers of 1024; KB, MB, GB
    = powers of 1000; K, M, G = powers of 1024)."""

    minimum: int | None = None

    @property
    def expected(self) -> str:
        return "a size in bytes such as 67108864 or 64MiB" + (f" (at least {self.minimum})" if self.minimum else "")

    def __call__(self, text: str) -> int:
        match = _BYTES_RE.match(text)
        if not match or match.group(2).lower() not in _BYTE_UNITS:
            raise Invalid()
        value = int(match.group(1)) * _BYTE_UNITS[match.group(2).lower()]
        if self.minimum is not None and value < self.minimum:
            raise Invalid()
        return value

    def show(self, value: Any) -> str:
        for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
            if value >= size and value % size == 0:
                return f"{value // size}{unit}"
        return str(value)

    def refused(self) -> Sequence[Bad]:
        bad = [Bad("not a size", "big"), Bad("unknown unit", "64 lots")]
        if self.minimum:
            bad.append(Bad(f"below {self.show(self.minimum)}", str(self.minimum - 1)))
        return bad


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Flag(_KindBase):
    """true/false, yes/no, on/off or 1/0 (any case)."""

    bad_values = (Bad("neither true nor false", "maybe"),)

    @property
    def expected(self) -> str:
        return "true or false (also yes/no, on/off, 1/0)"

    def __call__(self, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise Invalid()

    def show(self, value: Any) -> str:
        return "true" if value else "false"


@dataclass(frozen=True)
class Choice(_KindBase):
    """One of ``choices`` (compared case-insensitively, returned as spelled in ``choices``)."""

    bad_values = (Bad("not one of the choices", "sometimes"),)

    choices: tuple[str, ...]

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(self.choices)

    def __call__(self, text: str) -> str:
        chosen = {c.lower(): c for c in self.choices}.get(text.strip().lower())
        if chosen is None:
            raise Invalid()
        return chosen


@dataclass(frozen=True)
class Url(_KindBase):
    """An absolute URL with one of ``schemes`` and a host; non-ASCII characters are encoded, control
    characters and blanks refused (``remote_url.normalise_url``). Error lines show it without credentials."""

    bad_values = (
        Bad("not a URL", "prometheus:9090/api/v1/write"),
        Bad("wrong scheme", "ftp://127.0.0.1:9090/write"),
        Bad("control characters inside", "http://127.0.0.1:9090/api/v1/write\r\nX-Injected: 1"),
        Bad("password in an invalid URL", "http://writer:hunter2-secret@127.0.0.1:99999/api/v1/write"),
    )

    schemes: tuple[str, ...] = ("http", "https")

    @property
    def expected(self) -> str:
        return f"an {' or '.join(self.schemes)} URL with a host, e.g. http://prometheus:9090/api/v1/write"

    def __call__(self, text: str) -> str:
        try:
            return normalise_url(text, self.schemes)
        except BadUrl as exc:
            raise Invalid(str(exc)) from None

    def shown(self, text: str) -> str:
        return f"={redact_url(text.strip())!r}"


@dataclass(frozen=True)
class Secret(_KindBase):
    """A password or token given as a value: surrounding blanks removed, no control characters (and with
    ``blanks=False`` no blanks inside). Never shown: error lines say only what is wrong with it."""

    bad_values: ClassVar[tuple[Bad, ...]] = (Bad("control character", "pass\x01word"),)
    secret: ClassVar[bool] = True

    blanks: bool = True

    @property
    def expected(self) -> str:
        return "text without control characters" + ("" if self.blanks else " or blanks")

    def __call__(self, text: str) -> str:
        value = text.strip()
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise Invalid("contains a control character")
        if not self.blanks and any(ch.isspace() for ch in value):
            raise Invalid("contains a blank")
        return value

    def shown(self, text: str) -> str:
        return " (value not shown)"


@dataclass(frozen=True)
class UserName(Secret):
    """A Basic-auth user name: like ``Secret`` (it may be a token), and without ':'."""

    bad_values = (Bad("contains ':'", "writer:extra"), *Secret.bad_values)

    @property
    def expected(self) -> str:
        return "a user name without ':' or control characters"

    def __call__(self, text: str) -> str:
        value = super().__call__(text)
        if ":" in value:
            raise Invalid("contains ':'")
        return value


@dataclass(frozen=True)
class ReadableFile(_KindBase):
    """A file the client can read when it starts (a secret, a certificate, a key); its path is shown, never
    its content."""

    bad_values = (Bad("missing", "/nonexistent/file"), Bad("a directory", "/"))

    expected: str = "a readable file"

    def __call__(self, text: str) -> Path:
        path = Path(text.strip())
        if not path.exists():
            raise Invalid("no such file")
        if not path.is_file():
            raise Invalid("not a regular file")
        if not os.access(path, os.R_OK):
            raise Invalid("not readable by this user")
        return path


@dataclass(frozen=True)
class HeaderList(_KindBase):
    """Extra request headers, ``Name=value`` separated by commas (``request_headers.parse_headers``).
    Error lines show the names only: a header value can be a credential."""

    bad_values = (
        Bad("no '='", "X-Scope-OrgID"),
        Bad("a protocol header", "Content-Type=text/plain"),
        Bad("Authorization", "Authorization=Bearer not-a-real-token"),
    )

    secret: ClassVar[bool] = True  # a value can be a credential

    expected: str = "Name=value pairs separated by commas, e.g. X-Scope-OrgID=lab-a"

    def __call__(self, text: str) -> tuple[tuple[str, str], ...]:
        try:
            return parse_headers(text)
        except BadHeaders as exc:
            raise Invalid(str(exc)) from None

    def show(self, value: Any) -> str:
        return ",".join(f"{name}=***" for name, _ in value)

    def shown(self, text: str) -> str:
        return f"={shown_names(text)!r}"


@dataclass(frozen=True)
class Text(_KindBase):
    """Any text (surrounding blanks removed); ``expected`` says what it should name."""

    expected: str = "any text"

    def __call__(self, text: str) -> str:
        return text.strip()


@dataclass(frozen=True)
class LabelValue(_KindBase):
    """A Prometheus label value given as-is: printable, no surrounding blanks, bounded length."""

    bad_values = (
        Bad("surrounding blanks", " cpu "),
        Bad("control character", "host\tname"),
    )

    max_length: int = 256

    @property
    def expected(self) -> str:
        return f"a printable label value without surrounding blanks, at most {self.max_length} chars"

    def __call__(self, text: str) -> str:
        if text != text.strip() or len(text) > self.max_length or not text.isprintable():
            raise Invalid()
        return text


@dataclass(frozen=True)
class MetricName(_KindBase):
    """A Prometheus metric name (or prefix of one)."""

    bad_values = (Bad("not a metric name", "9-bad"),)

    what: str = "a Prometheus metric name"

    @property
    def expected(self) -> str:
        return f"{self.what} (letters, digits, '_' or ':', not starting with a digit)"

    def __call__(self, text: str) -> str:
        name = text.strip()
        if not METRIC_NAME_RE.match(name):
            raise Invalid()
        return name


@dataclass(frozen=True)
class FilePath(_KindBase):
    """A filesystem path; with ``must_exist`` it has to exist when the client starts."""

    must_exist: bool = False

    @property
    def expected(self) -> str:
        return "an existing path" if self.must_exist else "a path"

    def __call__(self, text: str) -> Path:
        path = Path(text.strip())
        if self.must_exist and not path.exists():
            raise Invalid()
        return path

    def refused(self) -> Sequence[Bad]:
        return [Bad("missing", "/nonexistent/path")] if self.must_exist else []


@dataclass(frozen=True)
class Directory(_KindBase):
    """A directory that may not exist yet (it is created at start); an existing path must be a directory."""

    bad_values = (Bad("a file, not a directory", "/etc/hostname"),)

    expected: str = "a directory (created if missing)"

    def __call__(self, text: str) -> Path:
        path = Path(text.strip())
        if path.exists() and not path.is_dir():
            raise Invalid()
        return path


@dataclass(frozen=True)
class CommaList(_KindBase):
    """Items separated by commas, each matching the regular expression ``item`` (blanks around items and
    empty items ignored), as a tuple. ``everything`` (e.g. ``all``), alone, means the empty tuple: no
    selection. ``what`` completes "expected ..."; ``bad`` are values of the wrong shape it must refuse."""

    item: str
    what: str
    everything: str | None = None
    bad: tuple[Bad, ...] = ()

    @property
    def expected(self) -> str:
        return (f"{self.everything!r} or " if self.everything else "") + self.what

    def __call__(self, text: str) -> tuple[str, ...]:
        items = tuple(part.strip() for part in text.split(",") if part.strip())
        if self.everything is not None and items == (self.everything,):
            return ()
        pattern = re.compile(self.item)
        if not items or not all(pattern.fullmatch(item) for item in items):
            raise Invalid()
        return items

    def show(self, value: Any) -> str:
        return ",".join(value) if value or self.everything is None else self.everything

    def refused(self) -> Sequence[Bad]:
        return self.bad
