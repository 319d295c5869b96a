"""The client against a real Prometheus protected by its web config (bcrypt basic auth, TLS from a CA made
with openssl, client certificates): every sample arrives; a wrong CA or password is named in one line,
retried, and fixing the file on disk delivers everything without a restart; no secret in any output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testkit.wait import wait_until
from testkit.webconfig import Pki, make_pki

from .helpers import (
    PASSWORD,
    USER,
    assert_all_stored,
    complete_run,
    password_file,
    run_to_completion,
    secured_prometheus,
    seq_run,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make certificates"),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    pytest.importorskip("bcrypt", reason="bcrypt not installed (./run-tests.sh installs requirements-test.txt)")
    return make_pki(tmp_path_factory.mktemp("pki"))


MODES = {
    "basic": {"basic": True, "tls": False, "mtls": False},
    "tls+basic": {"basic": True, "tls": True, "mtls": False},
    "mtls+basic": {"basic": True, "tls": True, "mtls": True},
    "mtls": {"basic": False, "tls": True, "mtls": True},
}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_sample_arrives(tmp_path: Path, pki: Pki, mode: str) -> None:
    want = MODES[mode]
    env: dict[str, str] = {}
    if want["basic"]:
        env.update(REMOTE_WRITE_USERNAME=USER, REMOTE_WRITE_PASSWORD_FILE=str(password_file(tmp_path / "secrets")))
    if want["tls"]:
        env["REMOTE_WRITE_CA_FILE"] = str(pki.ca.cert)
    if want["mtls"]:
        env.update(REMOTE_WRITE_CERT_FILE=str(pki.client.cert), REMOTE_WRITE_KEY_FILE=str(pki.client.key))
    with secured_prometheus(tmp_path, pki, **want) as prometheus:
        tally, client = complete_run(tmp_path / "run", prometheus, **env)
    assert_all_stored(tally, client)
    assert PASSWORD not in client.log_text()


def test_a_wrong_ca_is_named_and_the_corrected_file_delivers_everything(tmp_path: Path, pki: Pki) -> None:
    ca_file = tmp_path / "ca.pem"
    shutil.copy(pki.other_ca.cert, ca_file)
    with secured_prometheus(tmp_path, pki, basic=True, tls=True, mtls=False) as prometheus:
        run = seq_run(
            tmp_path / "run",
            prometheus,
            REMOTE_WRITE_USERNAME=USER,
            REMOTE_WRITE_PASSWORD_FILE=str(password_file(tmp_path / "secrets")),
            REMOTE_WRITE_CA_FILE=str(ca_file),
        )
        try:
            client = run.start_client()
            expected = f"REMOTE_WRITE_CA_FILE={ca_file} is not the CA that signed it: point REMOTE_WRITE_CA_FILE at"
            client.wait_ready(lambda: expected in client.log_text(), 60, "the TLS error names the CA file")
            run.wait_ticks(run.ticks() + 20, client)  # a backlog builds up while the CA is wrong
            assert prometheus.count_samples("reliability_sequence") == 0
            shutil.copy(pki.ca.cert, ca_file)
            tally = run_to_completion(run, client, ticks=run.ticks() + 10)
        finally:
            run.cleanup()
    assert_all_stored(tally, client)
    assert "Traceback" not in client.log_text()


def test_a_wrong_password_corrected_on_disk_loses_nothing(tmp_path: Path, pki: Pki) -> None:
    secrets = tmp_path / "secrets"
    pw = password_file(secrets, "Wrong-password-for-tests-19ab")
    with secured_prometheus(tmp_path, pki, basic=True, tls=True, mtls=False) as prometheus:
        run = seq_run(
            tmp_path / "run",
            prometheus,
            REMOTE_WRITE_USERNAME=USER,
            REMOTE_WRITE_PASSWORD_FILE=str(pw),
            REMOTE_WRITE_CA_FILE=str(pki.ca.cert),
        )
        try:
            client = run.start_client()
            client.wait_ready(lambda: "HTTP 401" in client.log_text(), 60, "the refusal is logged")
            run.wait_ticks(run.ticks() + 20, client)
            # Rewritten in place, as an editor or a secret manager would.
            pw.write_text(PASSWORD + "\n")
            # The sender retries refused credentials slowly: allow a few of its retry intervals.
            wait_until(lambda: prometheus.count_samples("reliability_sequence") > 0, 180, message="delivery resumed")
            tally = run_to_completion(run, client, ticks=run.ticks() + 10)
        finally:
            run.cleanup()
    assert_all_stored(tally, client)
    log = client.log_text()
    assert PASSWORD not in log and "Wrong-password-for-tests-19ab" not in log
