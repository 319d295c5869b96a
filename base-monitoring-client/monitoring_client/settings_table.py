"""Settings as a table: one row per environment variable, declared on the field of a frozen dataclass.

A client's settings class lists its rows (the kinds of value, such as ``Number``, are in
``settings_values``); everything else follows from them::

    @dataclass(frozen=True)
    class Settings:
        gain: float = setting("MY_GAIN", Number(minimum=0), 1.0, "what the readings are multiplied by")

    SETTINGS = parse(Settings)  # every invalid variable at once: ConfigError, one line each, exit 2

The same rows render the README's settings table (``markdown_table``; the README keeps it between marker
comments, ``python -m monitoring_client.settings_table`` rewrites or checks it) and give the reliability
report its bad-input cases (``Setting.refused``). Adding a setting is one row plus its use. The base
client's rows are ``monitoring_client.config.Config``; each client package declares its own the same way.

An empty value counts as unset (``FOO=`` in a compose ``.env`` file means "use the default").
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from monitoring_client.errors import ConfigError
from monitoring_client.settings_values import Bad, Invalid, Kind

__all__ = ["Setting", "markdown_table", "parse", "read", "refusals", "rows", "setting", "update_readme"]

D = TypeVar("D")
T = TypeVar("T")

_METADATA_KEY = "monitoring_client.setting"
BEGIN = "<!-- settings table: generated from the code by `python -m monitoring_client.settings_table`; do not edit -->"
END = "<!-- end of settings table -->"


@dataclass(frozen=True)
class Setting:
    """One row: the variable, the dataclass field it fills, its kind (parser and bounds), its default and
    a one-line meaning. ``default_text`` replaces the default in the README when the value alone would not
    say it (computed or absent); ``refused_at_start`` lists values the kind accepts but the client refuses
    when it starts (a module that does not exist, an address it cannot listen on)."""

    variable: str
    kind: Kind[Any]
    meaning: str
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    default_text: str | None = None
    refused_at_start: tuple[Bad, ...] = ()
    field: str = ""

    def default_value(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default

    def refused(self) -> list[Bad]:
        """Every value this setting must refuse: the kind's (wrong shape, out of bounds) and the row's own."""
        return [*self.kind.refused(), *self.refused_at_start]

    def readme_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        return f"`{self.kind.show(self.default)}`"


def setting(
    variable: str,
    kind: Kind[Any],
    default: Any,
    meaning: str,
    *,
    default_factory: Callable[[], Any] | None = None,
    default_text: str | None = None,
    refused_at_start: Sequence[Bad] = (),
) -> Any:
    """A dataclass field that is also a row of the settings table (use as the field's default)."""
    row = Setting(variable, kind, meaning, default, default_factory, default_text, tuple(refused_at_start))
    shown = not getattr(kind, "secret", False)  # a secret never appears in the settings object's repr
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, repr=shown, metadata={_METADATA_KEY: row})
    return dataclasses.field(default=default, repr=shown, metadata={_METADATA_KEY: row})


def rows(cls: type[Any]) -> list[Setting]:
    """The rows of a settings class, in field order, each with its field name filled in."""
    out = []
    for f in dataclasses.fields(cls):
        row = f.metadata.get(_METADATA_KEY)
        if isinstance(row, Setting):
            out.append(dataclasses.replace(row, field=f.name))
    return out


def refusals(cls: type[Any]) -> list[tuple[str, Bad, bool]]:
    """``(variable, bad value, refused only when the client starts)`` for every value the rows must refuse:
    what tests and the reliability report feed the real client to see it stop."""
    return [(row.variable, bad, bad in row.refused_at_start) for row in rows(cls) for bad in row.refused()]


def _text(variable: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(variable)
    if value is None or value.strip() == "":
        return None
    return value


def read(variable: str, kind: Kind[T], default: T, environ: Mapping[str, str] | None = None) -> T:
    """One variable: its value, ``default`` when unset or empty, or ``ConfigError`` (one line) when invalid."""
    text = _text(variable, environ)
    if text is None:
        return default
    try:
        return kind(text)
    except Invalid as exc:
        why = f"{exc.reason}; " if exc.reason else ""
        raise ConfigError(f"{variable}{kind.shown(text)} is invalid: {why}expected {kind.expected}") from None


def parse(
    cls: type[D],
    environ: Mapping[str, str] | None = None,
    *,
    checks: Sequence[Callable[[D, Mapping[str, str]], str | None]] = (),
) -> D:
    """Read every row of ``cls`` from ``environ`` (default ``os.environ``) and build an instance.

    ``checks`` look at the whole result for problems that involve several variables; each returns one
    line or None. Every problem is reported at once: one ``ConfigError``, one line per problem.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for row in rows(cls):
        try:
            values[row.field] = read(row.variable, row.kind, row.default_value(), env)
        except ConfigError as exc:
            problems.append(str(exc))
            values[row.field] = row.default_value()
    result = cls(**values)
    for check in checks:
        problem = check(result, env)
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError("\n".join(problems))
    return result


def markdown_table(cls: type[Any]) -> str:
    """The README's settings table of ``cls``: variable, default, accepted values, meaning."""
    lines = ["| variable | default | accepted | meaning |", "|---|---|---|---|"]
    for row in rows(cls):
        cells = (f"`{row.variable}`", row.readme_default(), row.kind.expected, row.meaning)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def update_readme(text: str, cls: type[Any]) -> str:
    """``text`` (a README) with the table between the markers replaced by ``markdown_table(cls)``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no settings table markers: put {BEGIN!r} and {END!r} where the table goes")
    return text[: start + len(BEGIN)] + "\n" + markdown_table(cls) + "\n" + text[end:]


def _load_class(spec: str) -> type[Any]:
    module, _, name = spec.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not isinstance(cls, type):
        raise TypeError(f"{spec} is not a class")
    return cls


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with --check, verify) the settings table of a README from a settings class."""
    parser = argparse.ArgumentParser(
        prog="python -m monitoring_client.settings_table",
        description="Regenerate the settings table of a README from the rows of a settings dataclass.",
    )
    parser.add_argument("cls", help="MODULE:CLASS, e.g. monitoring_client.config:Config")
    parser.add_argument("readme", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 when the README's table is out of date")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    wanted = update_readme(text, _load_class(args.cls))
    if wanted == text:
        return 0
    if args.check:
        print(
            f"{args.readme}: settings table out of date; run python -m monitoring_client.settings_table",
            file=sys.stderr,
        )
        return 1
    args.readme.write_text(wanted)
    print(f"{args.readme}: settings table rewritten")
    return 0


if __name__ == "__main__":
    # Through the package, so that the rows (declared with the package's ``Setting``) are recognised.
    from monitoring_client.settings_table import main as package_main

    sys.exit(package_main())
