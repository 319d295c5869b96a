"""The report's bad-input table must cover every variable the client reads, so none is left undocumented."""

from __future__ import annotations

import dataclasses

from monitoring_client.config import Config

from .bad_input import CLIENT_CASES


def test_every_client_variable_has_a_bad_input_case() -> None:
    variables = {f.name.upper() for f in dataclasses.fields(Config)}
    covered = {var for _, var, _ in CLIENT_CASES}
    assert variables - covered == set(), "add a case to bad_input.CLIENT_CASES for these variables"
    assert covered - variables == set(), "bad_input.CLIENT_CASES names variables the client does not read"
