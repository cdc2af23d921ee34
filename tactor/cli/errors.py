"""The command line's own failures: a mistake in the command, or nothing found."""

from __future__ import annotations

__all__ = ["CliError", "NotFound", "UsageError", "UserCodeFailed"]


class CliError(Exception):
    """A failure of the command itself, said in one line (``error: ...``)."""

    status = 1


class UsageError(CliError):
    """A mistake on the command line (bad JSON, a target that cannot be loaded): status 2."""

    status = 2


class NotFound(CliError):
    """What the command names is not there (a dead letter, a provider): status 4."""

    status = 4


class UserCodeFailed(CliError):
    """The user's code that the command ran (a factory, a constructor, ``on_start``)
    raised: status 1, the traceback at DEBUG on the ``tactor`` logger."""

    status = 1
