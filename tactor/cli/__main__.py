"""``python -m tactor.cli``: the ``tactor`` command."""

from tactor.cli import main

raise SystemExit(main())
