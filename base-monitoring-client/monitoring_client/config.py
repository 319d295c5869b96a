"""All configuration of the base client, read from the environment and validated once, at start.

A wrong value should stop the client before it collects anything, with a message that names the variable,
shows the value and says what is accepted, rather than surface minutes later as a confusing failure.
``Config`` is the table of the base client's settings (one ``setting`` row per variable, see
``settings_table``); ``load_config`` reports every invalid variable at once, one line each.

The ``env_*`` helpers read one variable with the same rules and the same one-line ``ConfigError``, for
code that reads a variable on its own; a client package declares its settings as rows instead, and gets
the all-at-once report and its README table with them.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitoring_client.settings_table import parse, read, setting
from monitoring_client.settings_values import (
    FREE_PORT,
    Bad,
    Bytes,
    Choice,
    Directory,
    FilePath,
    Flag,
    HeaderList,
    Kind,
    LabelValue,
    Number,
    ReadableFile,
    Secret,
    Text,
    Url,
    UserName,
    WholeNumber,
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_URL = "http://prometheus:9090/api/v1/write"
# HEALTH_HOST is only used with HEALTH_PORT set: its bad-input case sets a free port too.
NEEDS_PORT = {"HEALTH_PORT": FREE_PORT}
# Other variables some bad-input cases need (no working secret: these values are refused before use).
A_FILE = "/etc/hostname"  # a readable file that is no secret, certificate or key
BOTH_PASSWORDS = {"REMOTE_WRITE_USERNAME": "writer", "REMOTE_WRITE_PASSWORD_FILE": A_FILE}
BASIC = {"REMOTE_WRITE_USERNAME": "writer", "REMOTE_WRITE_PASSWORD": "not-a-password"}
TOKEN = {"REMOTE_WRITE_URL": "http://not-a-token@127.0.0.1:9/api/v1/write"}
TLS = {"REMOTE_WRITE_URL": "https://127.0.0.1:9/api/v1/write"}


def env_str(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable's value (surrounding blanks removed), or ``default`` when unset or empty."""
    return read(name, Text(), default, environ)


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    """A finite number within ``[minimum, maximum]`` (and strictly greater than ``above`` if given)."""
    return read(name, Number(minimum, maximum, above), default, environ)


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """A whole number within ``[minimum, maximum]``."""
    return read(name, WholeNumber(minimum, maximum), default, environ)


def env_optional_int(
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int | None:
    """Like ``env_int`` but ``None`` when unset: for features that are off unless configured."""
    return read(name, WholeNumber(minimum, maximum), None, environ)


def env_bytes(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """A size in bytes, optionally with a unit (see ``settings_values.Bytes``)."""
    return read(name, Bytes(minimum), default, environ)


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    """true/false, yes/no, on/off or 1/0 (any case)."""
    return read(name, Flag(), default, environ)


def env_choice(name: str, default: str, choices: tuple[str, ...], environ: Mapping[str, str] | None = None) -> str:
    """One of ``choices`` (compared case-insensitively, returned as spelled in ``choices``)."""
    return read(name, Choice(choices), default, environ)


def env_path(
    name: str,
    default: str | Path,
    *,
    must_exist: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """A filesystem path; with ``must_exist`` the path has to exist when the client starts."""
    return read(name, FilePath(must_exist), Path(default), environ)


def env_url(
    name: str,
    default: str,
    *,
    schemes: tuple[str, ...] = ("http", "https"),
    environ: Mapping[str, str] | None = None,
) -> str:
    """An absolute URL with one of ``schemes`` and a host, e.g. http://prometheus:9090/api/v1/write."""
    return read(name, Url(schemes), default, environ)


def optional(variable: str, kind: Kind[Any], meaning: str, *refused: Bad) -> Any:
    """A row for a setting that is off unless given (default None); ``refused`` are the values the client
    refuses at start although the kind accepts them (settings that do not go together)."""
    return setting(variable, kind, None, meaning, default_text="unset", refused_at_start=refused)


def secret_file(variable: str, holding: str, *refused: Bad) -> Any:
    """A row for a file holding a secret, which the transport re-reads when it changes."""
    meaning = f"file holding {holding}, surrounding blanks ignored; re-read when it changes"
    return optional(variable, ReadableFile(), meaning, *refused)


@dataclass(frozen=True)
class Config:
    """Every setting of the base client: one row per variable (variable, kind and bounds, default, meaning).

    The README's configuration table is rendered from these rows (``tests/test_config.py`` fails when it
    is out of date; ``python -m monitoring_client.settings_table monitoring_client.config:Config README.md``
    rewrites it).
    """

    remote_write_url: str = setting(
        "REMOTE_WRITE_URL",
        Url(),
        DEFAULT_URL,
        "the receiver; `user:password@` in it is sent as Basic auth; logged without credentials (see"
        " Authentication and TLS)",
    )
    remote_write_username: str | None = optional(
        "REMOTE_WRITE_USERNAME",
        UserName(),
        "Basic auth user, with the password below",
        Bad("without a password", "writer"),
    )
    remote_write_password_file: Path | None = secret_file(
        "REMOTE_WRITE_PASSWORD_FILE", "the Basic auth password", Bad("without REMOTE_WRITE_USERNAME", A_FILE)
    )
    remote_write_password: str | None = optional(
        "REMOTE_WRITE_PASSWORD",
        Secret(),
        "the password as a value (the file is safer: values show in `docker inspect`)",
        Bad("and the password file too", "not-a-password", BOTH_PASSWORDS),
    )
    remote_write_bearer_token_file: Path | None = secret_file(
        "REMOTE_WRITE_BEARER_TOKEN_FILE", "a bearer token (not with Basic auth)", Bad("with Basic auth", A_FILE, BASIC)
    )
    remote_write_bearer_token: str | None = optional(
        "REMOTE_WRITE_BEARER_TOKEN", Secret(blanks=False), "the bearer token as a value", Bad("also in URL", "t", TOKEN)
    )
    remote_write_ca_file: Path | None = optional(
        "REMOTE_WRITE_CA_FILE",
        ReadableFile(),
        "PEM CA certificate(s) the receiver's certificate must chain to, instead of the system's; re-read when"
        " it changes",
        Bad("with an http:// URL", "/etc/os-release"),
        Bad("not a certificate", A_FILE, TLS),
    )
    remote_write_cert_file: Path | None = optional(
        "REMOTE_WRITE_CERT_FILE", ReadableFile(), "PEM client certificate (mutual TLS)", Bad("no key", A_FILE, TLS)
    )
    remote_write_key_file: Path | None = optional(
        "REMOTE_WRITE_KEY_FILE", ReadableFile(), "its PEM private key (not encrypted)", Bad("no cert", A_FILE, TLS)
    )
    remote_write_headers: tuple[tuple[str, str], ...] | None = optional(
        "REMOTE_WRITE_HEADERS",
        HeaderList(),
        "extra headers on every request, e.g. `X-Scope-OrgID=lab-a`; not the protocol's own nor"
        " `Authorization`; values never logged",
    )
    scrape_interval_s: float = setting(
        "SCRAPE_INTERVAL_S", Number(above=0, maximum=3600), 0.1, "seconds between readings, passed to `get_power`"
    )
    push_interval_s: float = setting(
        "PUSH_INTERVAL_S", Number(minimum=0.01, maximum=3600), 1.0, "how often samples are encoded and queued to send"
    )
    max_retry_batches: int = setting(
        "MAX_RETRY_BATCHES", WholeNumber(minimum=1), 3600, "memory buffer bound in requests (an hour at 1 push/s)"
    )
    max_buffer_bytes: int = setting(
        "MAX_BUFFER_BYTES", Bytes(minimum=1024), 64 * 1024**2, "memory buffer bound in bytes of encoded requests"
    )
    raw_queue_size: int = setting("RAW_QUEUE_SIZE", WholeNumber(minimum=1), 10_000, "items from collector to processor")
    proc_queue_size: int = setting("PROC_QUEUE_SIZE", WholeNumber(minimum=1), 10_000, "items from processor to batcher")
    log_level: str = setting("LOG_LEVEL", Choice(LOG_LEVELS), "INFO", "log threshold (the log goes to stderr)")
    monitor_impl: str = setting(
        "MONITOR_IMPL",
        Text("a module name, or a path to a .py file (its directory goes first on the import path)"),
        "monitor_impl",
        "the implementation, defining `get_power` and `process_data`",
        refused_at_start=(Bad("missing file", "/nonexistent/monitor_impl.py"), Bad("missing module", "no_such_module")),
    )
    service_label: str | None = setting(
        "SERVICE_LABEL",
        LabelValue(),
        None,
        "the `source` label",
        default_text="`SERVICE_NAME` of the implementation, else `monitoring-client`",
    )
    host_label: str = setting(
        "HOST_LABEL",
        LabelValue(),
        None,
        "the `host` label",
        default_factory=socket.gethostname,
        default_text="hostname",
    )
    request_timeout_s: float = setting(
        "REQUEST_TIMEOUT_S",
        Number(above=0, maximum=300),
        5.0,
        "bound of each whole exchange: connecting, TLS, sending, the answer however slowly it comes",
    )
    max_samples_per_request: int = setting(
        "MAX_SAMPLES_PER_REQUEST", WholeNumber(minimum=1, maximum=1_000_000), 2000, "larger batches are split"
    )
    max_request_bytes: int = setting(
        "MAX_REQUEST_BYTES", Bytes(minimum=4096), 4 * 1024**2, "larger batches are split (uncompressed protobuf size)"
    )
    max_sample_age_s: float = setting(
        "MAX_SAMPLE_AGE_S", Number(minimum=0, maximum=365 * 86400), 3600.0, "older samples are dropped; `0`: no bound"
    )
    max_sample_ahead_s: float = setting(
        "MAX_SAMPLE_AHEAD_S", Number(minimum=1, maximum=86400), 60.0, "samples further ahead of the clock are dropped"
    )
    max_series: int = setting(
        "MAX_SERIES", WholeNumber(minimum=100, maximum=10**7), 10_000, "per-series state kept (twice this at most)"
    )
    retry_base_s: float = setting("RETRY_BASE_S", Number(above=0, maximum=3600), 0.5, "first backoff delay")
    retry_max_s: float = setting(
        "RETRY_MAX_S",
        Number(above=0, maximum=3600),
        10.0,
        "backoff cap, at least `RETRY_BASE_S`",
        refused_at_start=(Bad("below RETRY_BASE_S", "0.1"),),
    )
    shutdown_timeout_s: float = setting(
        "SHUTDOWN_TIMEOUT_S", Number(above=0, maximum=3600), 8.0, "flush deadline after SIGTERM (under Docker's 10 s)"
    )
    health_port: int | None = setting(
        "HEALTH_PORT",
        WholeNumber(minimum=1, maximum=65535),
        None,
        "serve `/healthz` and `/metrics` on this port",
        default_text="unset (off)",
    )
    health_host: str = setting(
        "HEALTH_HOST",
        Text("an address of this machine"),
        "127.0.0.1",
        "bind address of the health endpoint; `0.0.0.0` to let another container scrape `/metrics`",
        refused_at_start=(Bad("unknown address (with HEALTH_PORT set)", "no-such-host.invalid", NEEDS_PORT),),
    )
    self_metrics_interval_s: float = setting(
        "SELF_METRICS_INTERVAL_S", Number(minimum=0, maximum=86400), 10.0, "push of the client's own metrics; `0`: off"
    )
    spool_dir: Path | None = setting(
        "SPOOL_DIR",
        Directory("a directory (created if missing), or unset to keep unsent data in memory only"),
        None,
        "on-disk spool: unsent requests survive restarts and crashes (not writable: memory only, with a warning)",
        default_text="unset (memory only)",
    )
    spool_max_bytes: int = setting(
        "SPOOL_MAX_BYTES", Bytes(minimum=64 * 1024), 1024**3, "bound of the spool files; oldest dropped first"
    )
    spool_max_age_s: float = setting(
        "SPOOL_MAX_AGE_S",
        Number(minimum=0, maximum=30 * 86400),
        3600.0,
        "older spooled requests are dropped; `0`: never",
    )


def _retry_cap_not_below_base(config: Config, env: Mapping[str, str]) -> str | None:
    if config.retry_max_s >= config.retry_base_s:
        return None
    given = env.get("RETRY_MAX_S") or str(config.retry_max_s)
    return f"RETRY_MAX_S={given!r} is invalid: expected a number >= RETRY_BASE_S ({config.retry_base_s:g})"


def _auth_and_tls_consistent(config: Config, env: Mapping[str, str]) -> str | None:
    """The credential and TLS settings that only make sense together (or only apart)."""
    problems = []
    password = config.remote_write_password is not None or config.remote_write_password_file is not None
    token = config.remote_write_bearer_token is not None or config.remote_write_bearer_token_file is not None
    basic = config.remote_write_username is not None or password
    if config.remote_write_username is not None and not password:
        problems.append(
            "REMOTE_WRITE_USERNAME is set without a password: set REMOTE_WRITE_PASSWORD_FILE (or REMOTE_WRITE_PASSWORD)"
        )
    if password and config.remote_write_username is None:
        problems.append("a password is set without REMOTE_WRITE_USERNAME: set the user name too")
    if config.remote_write_password is not None and config.remote_write_password_file is not None:
        problems.append("REMOTE_WRITE_PASSWORD and REMOTE_WRITE_PASSWORD_FILE are both set: keep one (the file)")
    if config.remote_write_bearer_token is not None and config.remote_write_bearer_token_file is not None:
        problems.append(
            "REMOTE_WRITE_BEARER_TOKEN and REMOTE_WRITE_BEARER_TOKEN_FILE are both set: keep one (the file)"
        )
    if basic and token:
        problems.append(
            "Basic auth (REMOTE_WRITE_USERNAME and a password) and a bearer token (REMOTE_WRITE_BEARER_TOKEN...)"
            " are both set: a request carries one Authorization header; keep one"
        )
    if (basic or token) and "@" in urlsplit(config.remote_write_url).netloc:
        problems.append(
            "REMOTE_WRITE_URL carries credentials (user:password@) and the REMOTE_WRITE_USERNAME /"
            " REMOTE_WRITE_BEARER_TOKEN settings are set too: keep one of them"
        )
    if (config.remote_write_cert_file is None) != (config.remote_write_key_file is None):
        problems.append(
            "REMOTE_WRITE_CERT_FILE and REMOTE_WRITE_KEY_FILE go together (mutual TLS needs both): set the other"
            " or neither"
        )
    tls_files = [
        name
        for name, value in (
            ("REMOTE_WRITE_CA_FILE", config.remote_write_ca_file),
            ("REMOTE_WRITE_CERT_FILE", config.remote_write_cert_file),
            ("REMOTE_WRITE_KEY_FILE", config.remote_write_key_file),
        )
        if value is not None
    ]
    if tls_files and urlsplit(config.remote_write_url).scheme.lower() != "https":
        need, them = ("needs", "it") if len(tls_files) == 1 else ("need", "them")
        problems.append(
            f"{' and '.join(tls_files)} {need} an https:// REMOTE_WRITE_URL (it is http://): use https, or unset {them}"
        )
    return "\n".join(problems) or None


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate every variable; raise one ``ConfigError`` listing each problem on its own line."""
    return parse(Config, environ, checks=(_retry_cap_not_below_base, _auth_and_tls_consistent))
