"""MONITOR_IMPL: module names, .py paths with importable siblings, and clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from monitoring_client.errors import ConfigError
from monitoring_client.impl_loader import load_impl, service_name

IMPLS = Path(__file__).resolve().parent / "impls"


@pytest.fixture(autouse=True)
def restore_import_state():
    saved_finders, saved_modules = list(sys.meta_path), set(sys.modules)
    yield
    sys.meta_path[:] = saved_finders
    for name in set(sys.modules) - saved_modules:
        del sys.modules[name]


def test_default_module_from_working_directory(tmp_path: Path) -> None:
    (tmp_path / "monitor_impl.py").write_text(
        "SERVICE_NAME = 'from-cwd'\n"
        "def get_power(output_queue, scrape_interval_s, stop_event): pass\n"
        "def process_data(input_queue, output_queue, stop_event): pass\n"
    )
    module = load_impl("monitor_impl", cwd=tmp_path)
    assert module.__file__ == str(tmp_path / "monitor_impl.py")
    assert service_name(module) == "from-cwd"


def test_path_to_file_puts_its_directory_first_for_siblings() -> None:
    module = load_impl(str(IMPLS / "with_sibling" / "monitor_impl.py"))
    assert module.METRIC == "sibling_metric"


def test_relative_path_is_relative_to_cwd() -> None:
    module = load_impl("impls/counting_impl.py", cwd=IMPLS.parent)
    assert service_name(module) == "counting-impl"


def test_service_name_default() -> None:
    module = load_impl(str(IMPLS / "failing_impl.py"))
    assert service_name(module) == "monitoring-client"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("/nonexistent/monitor_impl.py", "no such .py file"),
        ("no_such_monitor_module", "no module 'no_such_monitor_module'"),
        (str(IMPLS / "wrong_signature_impl.py"), "get_power must accept 3 positional arguments"),
        (str(IMPLS), "no such .py file"),
    ],
)
def test_errors_are_one_line_config_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_impl(spec, cwd=IMPLS)
    assert str(err.value).startswith(f"MONITOR_IMPL={spec!r} is invalid")
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_module_without_contract_functions(tmp_path: Path) -> None:
    (tmp_path / "empty_impl.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match=r"defines get_power\(output_queue, scrape_interval_s, stop_event\)"):
        load_impl("empty_impl", cwd=tmp_path)


def test_missing_dependency_of_the_implementation_is_not_hidden() -> None:
    with pytest.raises(ModuleNotFoundError, match="a_dependency_that_is_not_installed"):
        load_impl(str(IMPLS / "missing_dependency_impl.py"))


def test_implementation_config_error_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPL_GAIN", "-3")  # read at import by the implementation itself
    with pytest.raises(ConfigError, match=r"^IMPL_GAIN='-3' is invalid: expected a number >= 0$"):
        load_impl(str(IMPLS / "bad_config_impl.py"))
