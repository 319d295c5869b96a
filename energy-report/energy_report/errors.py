"""Errors a person can act on, each with the exit status the command line ends with.

Every failure the tool expects (a typo in a time, a server that refuses, a window with no data) is one of
these: the command line prints its message as one line, without a traceback, and exits with its status, so
scripts can tell "fix your command" from "fix your server" from "there is nothing to report".
"""

from __future__ import annotations

# Exit statuses (documented in the README and in --help).
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_SERVER = 3
EXIT_NO_DATA = 4


class ReportError(Exception):
    """Base class: ``str(error)`` is the one line shown to the user."""

    exit_status = EXIT_INTERNAL


class UsageError(ReportError):
    """The command line, a file it names, or a time or selector in it is wrong (exit 2)."""

    exit_status = EXIT_USAGE


class EnvironmentProblem(ReportError):
    """Something outside the command is missing or failing: the server, an optional package (exit 3)."""

    exit_status = EXIT_SERVER


class ServerError(EnvironmentProblem):
    """The server cannot be reached, refuses the credentials, or fails (exit 3)."""


class NoDataError(ReportError):
    """Nothing to report: no series matches, or the window holds no sample (exit 4)."""

    exit_status = EXIT_NO_DATA
