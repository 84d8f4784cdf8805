"""Entry point of `python -m challenges.demo_data`; the command itself is `cli.main`."""

from __future__ import annotations

import sys

from challenges.demo_data.cli import main

if __name__ == "__main__":
    sys.exit(main())
