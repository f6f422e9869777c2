"""``python -m scarf_autoping``: the same command line as the ``scarf-autoping`` script."""

from __future__ import annotations

from .tools.cli import main

raise SystemExit(main())
