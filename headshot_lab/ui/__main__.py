"""``python -m headshot_lab.ui``: the ``audit-batch`` and ``delete-session`` commands."""

from headshot_lab.ui.cli import main

raise SystemExit(main())
