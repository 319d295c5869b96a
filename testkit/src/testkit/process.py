"""One child process started by a test or a benchmark, and only ever addressed by the PID it got.

Tests and benchmarks start real programs (Prometheus, the monitoring client, a fake RAPL tree, dockerd)
and must stop exactly those, whatever else runs on the machine: never by name. Every one of them needs
the same few things, which live here once: start with the output in a log file (appended, so a restart
keeps the history), wait until ready while noticing at once when the process died, signal it, stop it with
a grace period before SIGKILL, and show the end of its log when something goes wrong.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from testkit.wait import GiveUp, wait_until

T = TypeVar("T")
P = TypeVar("P", bound="ManagedProcess")


def find_binary(explicit: str | None, variable: str, name: str) -> str | None:
    """A program to start: ``explicit``, else ``$variable``, else ``name`` on PATH (None if none runs)."""
    candidate = explicit or os.environ.get(variable) or name
    if os.path.sep in candidate:
        return candidate if os.access(candidate, os.X_OK) else None
    return shutil.which(candidate)


class ManagedProcess:
    """A restartable child process with its output in ``log_path``.

    ``start()`` runs ``argv`` in a new session (so a signal meant for the test runner never reaches it);
    ``stop()`` sends SIGTERM once, waits ``grace`` seconds, then SIGKILLs. After an exit, ``start()`` runs
    the command again with the same log file.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        nice: int = 0,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.name = name or Path(self.argv[0]).name
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.nice = nice
        self.returncode: int | None = None
        self.killed = False  # the last stop() had to use SIGKILL
        self._proc: subprocess.Popen[bytes] | None = None
        self._signalled = False

    # -- state -------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """PID of the running process; None before ``start()`` and after it exited."""
        return self._proc.pid if self.alive() and self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def require_pid(self) -> int:
        """PID of the running process, for /proc readings; ``GiveUp`` with its log if it is not running."""
        self.check_alive()
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._proc.pid

    def check_alive(self) -> None:
        """Raise ``GiveUp`` (which ends any ``wait_until`` at once) if the process has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise GiveUp(f"{self.name} exited with {self._proc.returncode}:\n{self.log_tail()}")

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self: P) -> P:
        """Start the command (no-op while it runs); its output goes to the log file."""
        if self.alive():
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.returncode = None
        self.killed = False
        self._signalled = False
        if self.nice:
            os.setpriority(os.PRIO_PROCESS, self._proc.pid, self.nice)
        return self

    def wait_ready(self, predicate: Callable[[], T], timeout: float, message: str, interval: float = 0.05) -> T:
        """Wait for ``predicate`` to hold, failing at once (with the log) if the process exits meanwhile."""

        def ready() -> T:
            self.check_alive()
            return predicate()

        return wait_until(ready, timeout, interval=interval, message=f"{self.name}: {message}")

    def send(self, sig: int) -> None:
        """Send ``sig`` to the process by its PID (nothing if it already exited)."""
        if self.alive() and self._proc is not None:
            self._proc.send_signal(sig)
            if sig == signal.SIGTERM:
                self._signalled = True

    def terminate(self) -> None:
        """SIGTERM exactly once without waiting: a second SIGTERM means "exit now" to the client."""
        if not self._signalled:
            self.send(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Wait for the exit and return its status (``subprocess.TimeoutExpired`` if it takes longer)."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        self.returncode = self._proc.wait(timeout=timeout)
        return self.returncode

    def stop(self, grace: float = 15.0, *, must_exit: bool = False) -> int | None:
        """SIGTERM (once), wait up to ``grace`` seconds, then SIGKILL; return the exit status.

        ``killed`` tells afterwards whether SIGKILL was needed; with ``must_exit`` that is an
        ``AssertionError`` (a client that ignores SIGTERM is a bug). Safe to call at any time, also twice.
        """
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self.terminate()
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
                if must_exit:
                    raise AssertionError(f"{self.name} ignored SIGTERM for {grace:g}s:\n{self.log_tail()}") from None
        self.returncode = self._proc.returncode
        return self.returncode

    def kill(self, timeout: float = 30.0) -> int | None:
        """SIGKILL and reap the process (it cannot ignore that)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.kill()
            self.killed = True
            self._proc.wait(timeout=timeout)
        self.returncode = self._proc.returncode
        return self.returncode

    def __enter__(self: P) -> P:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- output ------------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
