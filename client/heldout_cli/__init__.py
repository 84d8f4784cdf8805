"""`heldout`: the command-line client of the Heldout REST API."""

from __future__ import annotations

__version__ = "0.1.0"
