"""Find the implementation named by MONITOR_IMPL and check it honours the seed's contract.

MONITOR_IMPL is either a module name (``monitor_impl``, ``my_pkg.impl``) found in the working directory
first, or a path to a ``.py`` file whose sibling modules and packages import as they would next to it.
Both work through one import finder placed first on ``sys.meta_path`` for that directory (top-level names
only), rather than by editing the interpreter's search path. The default, the module
``monitor_impl`` from the working directory, keeps the seed's Docker pattern working unchanged: copy your
``monitor_impl.py`` into the image's working directory and nothing else is needed.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from monitoring_client.errors import ConfigError

CONTRACT = (
    ("get_power", ("output_queue", "scrape_interval_s", "stop_event")),
    ("process_data", ("input_queue", "output_queue", "stop_event")),
)


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)


class DirectoryFinder(importlib.abc.MetaPathFinder):
    """Finds top-level modules and packages in one directory before anywhere else, as the directory of a
    script is searched first; submodules are found through their package as usual."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None or "." in fullname:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [self.directory])


def search_first(directory: Path) -> None:
    """Make ``directory``'s top-level modules importable ahead of everything else (once per directory)."""
    for finder in list(sys.meta_path):
        if isinstance(finder, DirectoryFinder) and finder.directory == str(directory):
            sys.meta_path.remove(finder)
    sys.meta_path.insert(0, DirectoryFinder(directory))
    importlib.invalidate_caches()


def load_impl(spec: str, cwd: Path | None = None) -> ModuleType:
    """Import the implementation and verify it has both contract functions.

    Raises ``ConfigError`` (one line) when the module or file cannot be found or lacks a function; errors
    raised by the implementation's own import (its ``UserError`` or a crash) propagate unchanged.
    """
    base = Path.cwd() if cwd is None else cwd
    expected = "a module name or a path to a .py file that defines get_power and process_data"
    if _looks_like_path(spec):
        path = Path(spec)
        if not path.is_absolute():
            path = base / path
        if not path.is_file() or path.suffix != ".py":
            raise ConfigError(f"MONITOR_IMPL={spec!r} is invalid: expected {expected} (no such .py file)")
        path = path.resolve()
        search_first(path.parent)
        name = path.stem
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:  # pragma: no cover - .py files always load
            raise ConfigError(f"MONITOR_IMPL={spec!r} is invalid: expected {expected}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # so pickling and `import name` elsewhere see the same module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    else:
        search_first(base)
        try:
            module = importlib.import_module(spec)
        except ModuleNotFoundError as exc:
            # Only "the implementation itself is missing" is a configuration problem; a dependency the
            # implementation imports that is missing is a broken image and propagates as a crash.
            if exc.name is not None and (exc.name == spec or spec.startswith(exc.name + ".")):
                raise ConfigError(
                    f"MONITOR_IMPL={spec!r} is invalid: expected {expected} (no module {spec!r} in {base}"
                    " or on the Python path)"
                ) from None
            raise
    check_contract(module, spec)
    return module


def check_contract(module: ModuleType, spec: str) -> None:
    """Refuse an implementation whose functions are missing or cannot take the contract's arguments."""
    for func_name, params in CONTRACT:
        func = getattr(module, func_name, None)
        signature_text = f"{func_name}({', '.join(params)})"
        if not callable(func):
            raise ConfigError(f"MONITOR_IMPL={spec!r} is invalid: expected a module that defines {signature_text}")
        try:
            inspect.signature(func).bind(*params)
        except TypeError:
            raise ConfigError(
                f"MONITOR_IMPL={spec!r} is invalid: {func_name} must accept 3 positional arguments {signature_text}"
            ) from None
        except ValueError:  # pragma: no cover - builtins without a signature: trust them
            pass


def service_name(module: ModuleType, default: str = "monitoring-client") -> str:
    """The implementation's optional ``SERVICE_NAME`` (the default ``source`` label), else ``default``."""
    value = getattr(module, "SERVICE_NAME", None)
    return value if isinstance(value, str) and value else default
