"""Errors a person can act on, each with the exit status the process ends with.

The command-line entry point prints the message of a ``UserError`` as-is (no traceback) and exits with its
``exit_status``. Implementations raise these too: while being imported, or from ``get_power`` /
``process_data``, where the pipeline catches them in the thread and shuts down with that status. Every
other exception means a bug or a crash: it is logged with its traceback and the process exits 1, so that a
container restart policy brings the client back instead of leaving it half-dead.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message says what was wrong, where, and the fix."""

    exit_status: int = 2


class ConfigError(UserError):
    """An invalid setting (environment variable, MONITOR_IMPL): one line per problem, exit status 2."""

    exit_status = 2


class EnvironmentProblem(UserError):
    """The machine lacks what the client needs (e.g. no RAPL counters): a short paragraph, exit status 3."""

    exit_status = 3
