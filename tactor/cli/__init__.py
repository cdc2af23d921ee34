"""The ``tactor`` command line: run, inspect and call services (docs/cli.md).

It stands on tactor's public API alone, as a user's program would; ``import
tactor`` does not import it.
"""

from .main import Exit, main

__all__ = ["Exit", "main"]
