"""Entry point of `python -m demo.bundles`; the command itself is `cli.main`."""

from __future__ import annotations

import sys

from demo.bundles.cli import main

if __name__ == "__main__":
    sys.exit(main())
