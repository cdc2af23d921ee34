"""``python -m tactor``: the ``tactor`` command (see :mod:`tactor.cli`)."""

from tactor.cli import main

raise SystemExit(main())
