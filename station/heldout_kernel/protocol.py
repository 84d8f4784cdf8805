"""The data-station protocol's version: a station sends it with every request, and the
platform answers a version it does not speak with 426 `protocol_unsupported` and a sentence
saying which it speaks (scoring.station_api)."""

from __future__ import annotations

# 2: answers carry only the claim, the error class and the aggregates (no message, exit
# code, run time or log), and every request names this version.
PROTOCOL_VERSION = 2
HEADER = "X-Heldout-Station-Protocol"
