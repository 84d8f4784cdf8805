"""`python -m heldout_cli ...` runs the `heldout` command."""

from __future__ import annotations

import sys

from heldout_cli.cli import main

sys.exit(main())
