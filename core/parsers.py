"""The API's JSON parser: Django REST framework's, refusing what the database cannot store
and what Python cannot parse, as 400 `parse_error` instead of a server error later.

PostgreSQL's text and jsonb columns refuse NUL (`\\u0000`): a string holding one would fail
the write that stores it, as a 500, wherever a view keeps a value without a serializer (DRF's
CharField already refuses NUL; the station protocol reads plain dicts). Very deep nesting
stops json's recursive parser with a RecursionError, which DRF does not catch.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

NUL = "\x00"


def has_nul(value: Any) -> bool:
    """Whether a NUL character is in any string (key or value) of a parsed JSON document."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        if has_nul(data):
            raise ParseError("JSON parse error - strings may not hold NUL characters (\\u0000).")
        return data
