"""All configuration, read from the environment and validated once, at start.

A wrong value should stop the client before it collects anything, with a message that names the variable,
shows the value and says what is accepted, rather than surface minutes later as a confusing failure. The
``env_*`` helpers are public so implementations parse their own variables the same way (and raise the
same ``ConfigError``); ``load_config`` reports every invalid variable at once, one line each.

An empty value counts as unset (``FOO=`` in a compose ``.env`` file means "use the default").
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from monitoring_client.errors import ConfigError

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
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


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value


def _invalid(name: str, value: str, expected: str) -> ConfigError:
    return ConfigError(f"{name}={value!r} is invalid: expected {expected}")


def _range_text(kind: str, minimum: float | None, maximum: float | None, above: float | None) -> str:
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return kind + (" " + " and ".join(parts) if parts else "")


def env_str(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable's value (surrounding blanks removed), or ``default`` when unset or empty."""
    raw = _raw(name, environ)
    return default if raw is None else raw.strip()


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
    raw = _raw(name, environ)
    if raw is None:
        return default
    expected = _range_text("a number", minimum, maximum, above)
    try:
        value = float(raw)
    except ValueError:
        raise _invalid(name, raw, expected) from None
    if (
        not math.isfinite(value)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
        or (above is not None and value <= above)
    ):
        raise _invalid(name, raw, expected)
    return value


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """A whole number within ``[minimum, maximum]``."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    expected = _range_text("a whole number", minimum, maximum, None)
    try:
        value = int(raw.strip())
    except ValueError:
        raise _invalid(name, raw, expected) from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _invalid(name, raw, expected)
    return value


def env_optional_int(
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int | None:
    """Like ``env_int`` but ``None`` when unset: for features that are off unless configured."""
    if _raw(name, environ) is None:
        return None
    return env_int(name, 0, minimum=minimum, maximum=maximum, environ=environ)


def env_bytes(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """A size in bytes: a whole number, optionally with a unit (KiB, MiB, GiB = powers of 1024; KB, MB, GB
    = powers of 1000; K, M, G = powers of 1024)."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    expected = "a size in bytes such as 67108864 or 64MiB" + (f" (at least {minimum})" if minimum else "")
    match = _BYTES_RE.match(raw)
    if not match or match.group(2).lower() not in _BYTE_UNITS:
        raise _invalid(name, raw, expected)
    value = int(match.group(1)) * _BYTE_UNITS[match.group(2).lower()]
    if minimum is not None and value < minimum:
        raise _invalid(name, raw, expected)
    return value


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    """true/false, yes/no, on/off or 1/0 (any case)."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _invalid(name, raw, "true or false (also yes/no, on/off, 1/0)")


def env_choice(name: str, default: str, choices: tuple[str, ...], environ: Mapping[str, str] | None = None) -> str:
    """One of ``choices`` (compared case-insensitively, returned as spelled in ``choices``)."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    by_lower = {c.lower(): c for c in choices}
    chosen = by_lower.get(raw.strip().lower())
    if chosen is None:
        raise _invalid(name, raw, "one of " + ", ".join(choices))
    return chosen


def env_path(
    name: str,
    default: str | Path,
    *,
    must_exist: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """A filesystem path; with ``must_exist`` the path has to exist when the client starts."""
    raw = _raw(name, environ)
    path = Path(default if raw is None else raw.strip())
    if must_exist and not path.exists():
        raise _invalid(name, str(path), "an existing path")
    return path


def env_url(
    name: str,
    default: str,
    *,
    schemes: tuple[str, ...] = ("http", "https"),
    environ: Mapping[str, str] | None = None,
) -> str:
    """An absolute URL with one of ``schemes`` and a host, e.g. http://prometheus:9090/api/v1/write."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    url = raw.strip()
    expected = f"an {' or '.join(schemes)} URL with a host, e.g. http://prometheus:9090/api/v1/write"
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        raise _invalid(name, raw, expected) from None
    if parts.scheme.lower() not in schemes or not parts.hostname or not port_ok or " " in url:
        raise _invalid(name, raw, expected)
    return url


def spool_directory(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """A directory for the on-disk spool, or None when unset (memory only). It may not exist yet (it is
    created at start); an existing path must be a directory."""
    raw = _raw(name, environ)
    if raw is None:
        return None
    path = Path(raw.strip())
    if path.exists() and not path.is_dir():
        raise _invalid(name, raw, "a directory (created if missing), or unset to keep unsent data in memory only")
    return path


_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class Config:
    """Every setting of the base client; see README.md for what each one is for."""

    remote_write_url: str = "http://prometheus:9090/api/v1/write"
    scrape_interval_s: float = 0.1
    push_interval_s: float = 1.0
    max_retry_batches: int = 3600
    max_buffer_bytes: int = 64 * 1024**2
    raw_queue_size: int = 10_000
    proc_queue_size: int = 10_000
    log_level: str = "INFO"
    monitor_impl: str = "monitor_impl"
    service_label: str | None = None
    host_label: str = field(default_factory=socket.gethostname)
    request_timeout_s: float = 5.0
    max_samples_per_request: int = 2000
    max_request_bytes: int = 4 * 1024**2
    retry_base_s: float = 0.5
    retry_max_s: float = 10.0
    shutdown_timeout_s: float = 8.0
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    self_metrics_interval_s: float = 10.0
    spool_dir: Path | None = None
    spool_max_bytes: int = 1024**3
    spool_max_age_s: float = 3600.0


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate every variable; raise one ``ConfigError`` listing each problem on its own line."""
    env = os.environ if environ is None else environ
    defaults = Config(host_label="")
    problems: list[str] = []

    def take(parse: Callable[[], T], fallback: T) -> T:
        try:
            return parse()
        except ConfigError as exc:
            problems.append(str(exc))
            return fallback

    def label_value(name: str, default: str | None) -> str | None:
        raw = _raw(name, env)
        if raw is None:
            return default
        if raw != raw.strip() or len(raw) > 256 or not raw.isprintable():
            raise _invalid(name, raw, "a printable label value without surrounding blanks, at most 256 chars")
        return raw

    config = Config(
        remote_write_url=take(lambda: env_url("REMOTE_WRITE_URL", defaults.remote_write_url, environ=env), ""),
        scrape_interval_s=take(
            lambda: env_float("SCRAPE_INTERVAL_S", defaults.scrape_interval_s, above=0, maximum=3600, environ=env),
            defaults.scrape_interval_s,
        ),
        push_interval_s=take(
            lambda: env_float("PUSH_INTERVAL_S", defaults.push_interval_s, minimum=0.01, maximum=3600, environ=env),
            defaults.push_interval_s,
        ),
        max_retry_batches=take(
            lambda: env_int("MAX_RETRY_BATCHES", defaults.max_retry_batches, minimum=1, environ=env),
            defaults.max_retry_batches,
        ),
        max_buffer_bytes=take(
            lambda: env_bytes("MAX_BUFFER_BYTES", defaults.max_buffer_bytes, minimum=1024, environ=env),
            defaults.max_buffer_bytes,
        ),
        raw_queue_size=take(
            lambda: env_int("RAW_QUEUE_SIZE", defaults.raw_queue_size, minimum=1, environ=env),
            defaults.raw_queue_size,
        ),
        proc_queue_size=take(
            lambda: env_int("PROC_QUEUE_SIZE", defaults.proc_queue_size, minimum=1, environ=env),
            defaults.proc_queue_size,
        ),
        log_level=take(lambda: env_choice("LOG_LEVEL", defaults.log_level, LOG_LEVELS, environ=env), "INFO"),
        monitor_impl=env_str("MONITOR_IMPL", defaults.monitor_impl, environ=env),
        service_label=take(lambda: label_value("SERVICE_LABEL", None), None),
        host_label=take(lambda: label_value("HOST_LABEL", None), None) or socket.gethostname(),
        request_timeout_s=take(
            lambda: env_float("REQUEST_TIMEOUT_S", defaults.request_timeout_s, above=0, maximum=300, environ=env),
            defaults.request_timeout_s,
        ),
        max_samples_per_request=take(
            lambda: env_int(
                "MAX_SAMPLES_PER_REQUEST",
                defaults.max_samples_per_request,
                minimum=1,
                maximum=1_000_000,
                environ=env,
            ),
            defaults.max_samples_per_request,
        ),
        max_request_bytes=take(
            lambda: env_bytes("MAX_REQUEST_BYTES", defaults.max_request_bytes, minimum=4096, environ=env),
            defaults.max_request_bytes,
        ),
        retry_base_s=take(
            lambda: env_float("RETRY_BASE_S", defaults.retry_base_s, above=0, maximum=3600, environ=env),
            defaults.retry_base_s,
        ),
        retry_max_s=take(
            lambda: env_float("RETRY_MAX_S", defaults.retry_max_s, above=0, maximum=3600, environ=env),
            defaults.retry_max_s,
        ),
        shutdown_timeout_s=take(
            lambda: env_float("SHUTDOWN_TIMEOUT_S", defaults.shutdown_timeout_s, above=0, maximum=3600, environ=env),
            defaults.shutdown_timeout_s,
        ),
        health_port=take(lambda: env_optional_int("HEALTH_PORT", minimum=1, maximum=65535, environ=env), None),
        health_host=env_str("HEALTH_HOST", defaults.health_host, environ=env),
        self_metrics_interval_s=take(
            lambda: env_float(
                "SELF_METRICS_INTERVAL_S",
                defaults.self_metrics_interval_s,
                minimum=0,
                maximum=86400,
                environ=env,
            ),
            defaults.self_metrics_interval_s,
        ),
        spool_dir=take(lambda: spool_directory("SPOOL_DIR", env), None),
        spool_max_bytes=take(
            lambda: env_bytes("SPOOL_MAX_BYTES", defaults.spool_max_bytes, minimum=64 * 1024, environ=env),
            defaults.spool_max_bytes,
        ),
        spool_max_age_s=take(
            lambda: env_float("SPOOL_MAX_AGE_S", defaults.spool_max_age_s, minimum=0, maximum=30 * 86400, environ=env),
            defaults.spool_max_age_s,
        ),
    )
    if config.retry_max_s < config.retry_base_s:
        problems.append(
            f"RETRY_MAX_S={env.get('RETRY_MAX_S') or str(config.retry_max_s)!r} is invalid: expected a number"
            f" >= RETRY_BASE_S ({config.retry_base_s:g})"
        )
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def is_valid_label_name(name: str) -> bool:
    """Prometheus label name syntax (the ``__`` prefix is reserved and refused separately)."""
    return bool(_LABEL_NAME_RE.match(name))
